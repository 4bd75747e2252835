package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/index"
)

// resolve answers many refs at once: the objects found, in the order
// asked, and the refs not found.
func (a *api) resolve(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var in struct {
		Refs       *[]string `json:"refs"`
		IncludeOLX bool      `json:"include_olx"`
	}
	if _, err := decodeJSON(r, a.opt.MaxJSONBytes, false, &in); err != nil {
		return err
	}
	if in.Refs == nil {
		return badRequest(`"refs" is required`)
	}
	if n := len(*in.Refs); n > a.opt.MaxResolveRefs {
		return tooLarge("%d refs asked, at most %d at once", n, a.opt.MaxResolveRefs)
	}
	asked := *in.Refs
	refs := make([]index.Ref, len(asked))
	for i, s := range asked {
		ref, err := index.ParseRef(s)
		if err != nil {
			return badRequest("refs[%d]: malformed ref %q: want uuid, uuid@N or uuid@draft", i, s)
		}
		refs[i] = ref
	}
	found, err := a.svc.Resolve(r.Context(), refs, in.IncludeOLX)
	if err != nil {
		return err
	}
	out := struct {
		Items   []any    `json:"items"`
		Missing []string `json:"missing"`
	}{Items: make([]any, 0, len(found)), Missing: make([]string, 0)}
	for i, res := range found {
		switch {
		case res.Kind == index.KindCollection && res.Collection != nil:
			out.Items = append(out.Items, resolvedCollectionJSON{"collection", asked[i], collectionView(*res.Collection)})
		case res.Kind == index.KindUnit && res.Unit != nil:
			item := resolvedUnitJSON{Kind: "unit", Ref: asked[i], unitJSON: unitView(*res.Unit, nil, false)}
			if in.IncludeOLX {
				olx := string(res.OLX)
				item.OLX = &olx
			}
			out.Items = append(out.Items, item)
		case res.Kind == index.KindAsset && res.Asset != nil:
			out.Items = append(out.Items, resolvedAssetJSON{"asset", asked[i], assetView(*res.Asset)})
		default:
			out.Missing = append(out.Missing, asked[i])
		}
	}
	return writeJSON(w, r, http.StatusOK, out)
}

package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/refs"
)

type linkIn struct {
	Target  *string `json:"target"`
	Kind    *string `json:"kind"`
	Version *int64  `json:"version"`
}

type unitIn struct {
	Collection     *string   `json:"collection"`
	Name           *string   `json:"name"`
	OLX            *string   `json:"olx"`
	Links          *[]linkIn `json:"links"`
	GarbageCollect *bool     `json:"garbage_collect"`
	Draft          *bool     `json:"draft"`
}

// maxVersion is the largest version number JSON clients read exactly.
const maxVersion = 1 << 53

// parseLinks converts the links of a request; nil stays nil (omitted).
func parseLinks(in *[]linkIn) (*[]index.Link, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]index.Link, len(*in))
	for i, l := range *in {
		if l.Target == nil {
			return nil, badRequest("links[%d]: target is required", i)
		}
		id, err := index.ParseUUID(*l.Target)
		if err != nil {
			return nil, badRequest("links[%d]: malformed target uuid %q", i, *l.Target)
		}
		out[i].Target = id
		if l.Kind != nil && *l.Kind != "" {
			switch *l.Kind {
			case "unit":
				out[i].Kind = index.KindUnit
			case "asset":
				out[i].Kind = index.KindAsset
			default:
				return nil, badRequest(`links[%d]: kind must be "unit" or "asset", not %q`, i, *l.Kind)
			}
		}
		if l.Version != nil {
			if *l.Version < 1 || *l.Version > maxVersion {
				return nil, badRequest("links[%d]: version must be a positive integer or null, not %d", i, *l.Version)
			}
			out[i].Version = *l.Version
		}
	}
	return &out, nil
}

func renderUnit(created int) func(index.Unit, bool) (int, []byte, error) {
	return render(created, func(u index.Unit) unitJSON { return unitView(u, nil, false) })
}

func (a *api) createUnit(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var in unitIn
	sum, err := decodeJSON(r, a.opt.MaxJSONBytes, false, &in)
	if err != nil {
		return err
	}
	if in.Collection == nil {
		return badRequest(`"collection" is required`)
	}
	coll, err := index.ParseUUID(*in.Collection)
	if err != nil {
		return badRequest("malformed collection uuid %q", *in.Collection)
	}
	if in.OLX == nil {
		return badRequest(`"olx" is required`)
	}
	links, err := parseLinks(in.Links)
	if err != nil {
		return err
	}
	u := refs.NewUnit{
		Collection:     coll,
		Name:           str(in.Name),
		OLX:            []byte(*in.OLX),
		GarbageCollect: in.GarbageCollect != nil && *in.GarbageCollect,
		Draft:          in.Draft != nil && *in.Draft,
	}
	if links != nil {
		u.Links = *links
	}
	ans, err := a.svc.CreateUnit(r.Context(), u, retryRequest(r, &sum, renderUnit(http.StatusCreated)))
	if err != nil {
		return err
	}
	return writeAnswer(w, r, ans)
}

// unitChange reads the body of a new version or a draft.
func (a *api) unitChange(r *http.Request) (refs.UnitChange, cas.Hash, error) {
	var in unitIn
	sum, err := decodeJSON(r, a.opt.MaxJSONBytes, false, &in)
	if err != nil {
		return refs.UnitChange{}, sum, err
	}
	if in.Collection != nil {
		return refs.UnitChange{}, sum, badRequest("a unit's collection cannot change")
	}
	links, err := parseLinks(in.Links)
	if err != nil {
		return refs.UnitChange{}, sum, err
	}
	c := refs.UnitChange{Name: in.Name, Links: links, GarbageCollect: in.GarbageCollect}
	if in.OLX != nil {
		b := []byte(*in.OLX)
		c.OLX = &b
	}
	return c, sum, nil
}

func (a *api) commitUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	c, sum, err := a.unitChange(r)
	if err != nil {
		return err
	}
	ans, err := a.svc.CommitUnit(r.Context(), id, c, retryRequest(r, &sum, renderUnit(http.StatusCreated)))
	if err != nil {
		return err
	}
	return writeAnswer(w, r, ans)
}

func (a *api) putUnitDraft(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	c, _, err := a.unitChange(r)
	if err != nil {
		return err
	}
	u, err := a.svc.PutUnitDraft(r.Context(), id, c)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, unitView(u, nil, false))
}

func (a *api) publishUnitDraft(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	sum, err := decodeJSON(r, a.opt.MaxJSONBytes, true, &struct{}{})
	if err != nil {
		return err
	}
	ans, err := a.svc.PublishUnitDraft(r.Context(), id, retryRequest(r, &sum, renderUnit(http.StatusCreated)))
	if err != nil {
		return err
	}
	return writeAnswer(w, r, ans)
}

// expandLinks reads ?expand=links.
func expandLinks(r *http.Request) (bool, error) {
	vs, ok := r.URL.Query()["expand"]
	if !ok {
		return false, nil
	}
	for _, v := range vs {
		if v != "links" {
			return false, badRequest(`expand may only be "links", not %q`, v)
		}
	}
	return true, nil
}

// getUnit serves the latest version of a unit, or version {n}.
func (a *api) getUnit(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	ref, err := refParam(p)
	if err != nil {
		return err
	}
	expand, err := expandLinks(r)
	if err != nil {
		return err
	}
	var u index.Unit
	var targets []index.Entity
	if expand {
		u, targets, err = a.svc.UnitWithLinks(r.Context(), ref)
	} else {
		u, err = a.svc.Unit(r.Context(), ref)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, unitView(u, targets, expand))
}

// getUnitOLX serves the OLX of a unit version as application/xml.
func (a *api) getUnitOLX(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	ref, err := refParam(p)
	if err != nil {
		return err
	}
	u, olx, err := a.svc.UnitOLX(r.Context(), ref)
	if err != nil {
		return err
	}
	a.serveContent(w, r, content{
		hash:         u.Hash,
		mediaType:    "application/xml",
		cacheControl: "no-cache",
		body:         bytes.NewReader(olx),
	})
	return nil
}

// unitLinks lists the links of the latest version of a unit, a page at a
// time (?expand=links resolves them).
func (a *api) unitLinks(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	ref, err := refParam(p)
	if err != nil {
		return err
	}
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	expand, err := expandLinks(r)
	if err != nil {
		return err
	}
	var u index.Unit
	var targets []index.Entity
	if expand {
		u, targets, err = a.svc.UnitWithLinks(r.Context(), ref)
	} else {
		u, err = a.svc.Unit(r.Context(), ref)
	}
	if err != nil {
		return err
	}
	start, end, next, err := slicePage(len(u.Links), opt)
	if err != nil {
		return err
	}
	if targets != nil {
		targets = targets[start:end]
	}
	return writeJSON(w, r, http.StatusOK, listJSON[linkJSON]{
		Items:      linksView(u.Links[start:end], targets, expand),
		NextCursor: next,
	})
}

// slicePage pages through a list held in memory: the cursor is the offset
// where the next page starts.
func slicePage(n int, opt index.ListOptions) (start, end int, next string, err error) {
	limit, err := index.PageLimit(opt)
	if err != nil {
		return 0, 0, "", err
	}
	if opt.Cursor != "" {
		b, derr := base64.RawURLEncoding.DecodeString(opt.Cursor)
		if derr != nil || len(b) != 9 || b[0] != 'o' {
			return 0, 0, "", badRequest("cursor does not parse")
		}
		off := binary.BigEndian.Uint64(b[1:])
		if off > uint64(n) {
			off = uint64(n)
		}
		start = int(off)
	}
	end = min(start+limit, n)
	if end < n {
		b := make([]byte, 9)
		b[0] = 'o'
		binary.BigEndian.PutUint64(b[1:], uint64(end))
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	return start, end, next, nil
}

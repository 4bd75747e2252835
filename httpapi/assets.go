package httpapi

import (
	"io"
	"mime"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/refs"
)

// assetParams are the query parameters and body of an asset write.
type assetParams struct {
	collection     *uuid.UUID
	name           *string
	mediaType      *string
	garbageCollect *bool
	draft          bool
	content        refs.AssetContent
	// body is the fingerprint's body hash: the empty body's in the hash
	// form, nil when the body is the content.
	body *cas.Hash
	// query is the fingerprint's query: the query string, and the
	// Content-Type of a body (it becomes the media type).
	query string
}

// assetParams reads an asset write: ?collection (create only), ?name,
// ?garbage_collect, ?draft (create only) and either ?hash with
// ?media_type and an empty body, or a body whose Content-Type is its media
// type.
func (a *api) assetParams(w http.ResponseWriter, r *http.Request, create bool) (assetParams, error) {
	var ap assetParams
	var err error
	q := r.URL.Query()
	ap.query = q.Encode()
	if s, ok := q["collection"]; ok {
		if !create {
			return ap, badRequest("an asset's collection cannot change")
		}
		id, err := index.ParseUUID(s[0])
		if err != nil {
			return ap, badRequest("malformed collection uuid %q", s[0])
		}
		ap.collection = &id
	} else if create {
		return ap, badRequest("collection is required")
	}
	ap.name = strQuery(r, "name")
	if ap.garbageCollect, err = boolQuery(r, "garbage_collect"); err != nil {
		return ap, err
	}
	draft, err := boolQuery(r, "draft")
	if err != nil {
		return ap, err
	}
	if draft != nil {
		if !create {
			return ap, badRequest("draft is a parameter of POST /api/v1/assets only")
		}
		ap.draft = *draft
	}
	ap.mediaType = strQuery(r, "media_type")

	if s, ok := q["hash"]; ok {
		h, err := cas.ParseHash(s[0])
		if err != nil {
			return ap, badRequest("malformed hash %q: want 64 hex digits", s[0])
		}
		if err := requireEmptyBody(r); err != nil {
			return ap, err
		}
		ap.content.Hash = &h
		empty := cas.Sum(nil)
		ap.body = &empty
	} else {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			ap.mediaType = &ct
			ap.query += "\x00content-type=" + ct
		}
		body, err := a.uploadBody(w, r)
		if err != nil {
			return ap, err
		}
		ap.content.Body = body
		ap.content.Size = announced(r)
	}
	if ap.mediaType != nil {
		if _, _, err := mime.ParseMediaType(*ap.mediaType); err != nil {
			return ap, badRequest("malformed media type %q", *ap.mediaType)
		}
	}
	return ap, nil
}

// requireEmptyBody refuses a body beside ?hash=.
func requireEmptyBody(r *http.Request) error {
	if r.ContentLength > 0 {
		return badRequest("a request with hash= has an empty body")
	}
	if r.ContentLength < 0 {
		var b [1]byte
		if n, _ := io.ReadFull(r.Body, b[:]); n > 0 {
			return badRequest("a request with hash= has an empty body")
		}
	}
	return nil
}

func renderAsset(created int) func(index.Asset, bool) (int, []byte, error) {
	return render(created, assetView)
}

func (ap assetParams) request(r *http.Request, created int) refs.Request[index.Asset] {
	req := retryRequest(r, ap.body, renderAsset(created))
	req.Query = ap.query
	return req
}

func (a *api) createAsset(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ap, err := a.assetParams(w, r, true)
	if err != nil {
		return err
	}
	na := refs.NewAsset{
		Collection:     *ap.collection,
		Name:           str(ap.name),
		MediaType:      ap.mediaType,
		GarbageCollect: ap.garbageCollect != nil && *ap.garbageCollect,
		Draft:          ap.draft,
		Content:        ap.content,
	}
	ans, err := a.svc.CreateAsset(r.Context(), na, ap.request(r, http.StatusCreated))
	if err != nil {
		return err
	}
	return writeAnswer(w, r, ans)
}

func (ap assetParams) change() refs.AssetChange {
	return refs.AssetChange{
		Name:           ap.name,
		MediaType:      ap.mediaType,
		GarbageCollect: ap.garbageCollect,
		Content:        ap.content,
	}
}

func (a *api) commitAsset(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	ap, err := a.assetParams(w, r, false)
	if err != nil {
		return err
	}
	ans, err := a.svc.CommitAsset(r.Context(), id, ap.change(), ap.request(r, http.StatusCreated))
	if err != nil {
		return err
	}
	return writeAnswer(w, r, ans)
}

func (a *api) putAssetDraft(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	ap, err := a.assetParams(w, r, false)
	if err != nil {
		return err
	}
	asset, err := a.svc.PutAssetDraft(r.Context(), id, ap.change())
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, assetView(asset))
}

func (a *api) publishAssetDraft(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	sum, err := decodeJSON(r, a.opt.MaxJSONBytes, true, &struct{}{})
	if err != nil {
		return err
	}
	ans, err := a.svc.PublishAssetDraft(r.Context(), id, retryRequest(r, &sum, renderAsset(http.StatusCreated)))
	if err != nil {
		return err
	}
	return writeAnswer(w, r, ans)
}

// getAsset serves the metadata of the latest version, or of version {n}.
func (a *api) getAsset(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	ref, err := refParam(p)
	if err != nil {
		return err
	}
	asset, err := a.svc.Asset(r.Context(), ref)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, assetView(asset))
}

// getAssetContent serves an asset version's bytes with its media type;
// or, asked with `Prefer: redirect` on a store that signs URLs, redirects
// to them.
func (a *api) getAssetContent(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	ref, err := refParam(p)
	if err != nil {
		return err
	}
	if wantsRedirect(r) && a.svc.Presigns() {
		asset, err := a.svc.Asset(r.Context(), ref)
		if err != nil {
			return err
		}
		u, err := a.svc.PresignAsset(r.Context(), asset, assetMediaType(asset))
		if err != nil {
			return err
		}
		redirect(w, u)
		return nil
	}
	asset, rd, err := a.svc.OpenAsset(r.Context(), ref)
	if err != nil {
		return err
	}
	defer rd.Close()
	a.serveContent(w, r, content{hash: asset.Hash, mediaType: assetMediaType(asset), cacheControl: "no-cache", body: rd})
	return nil
}

// assetMediaType is the Content-Type an asset's bytes are served with.
func assetMediaType(asset index.Asset) string {
	if asset.MediaType == "" {
		return refs.DefaultMediaType
	}
	return asset.MediaType
}

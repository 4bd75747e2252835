package httpapi

import (
	"fmt"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/refs"
)

type collectionIn struct {
	Name           *string `json:"name"`
	Description    *string `json:"description"`
	Owner          *string `json:"owner"`
	Author         *string `json:"author"`
	License        *string `json:"license"`
	GarbageCollect *bool   `json:"garbage_collect"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// retryRequest is the refs.Request of a creating request: its key,
// fingerprint parts and how its answer is rendered.
func retryRequest[T any](r *http.Request, body *cas.Hash, render func(T, bool) (int, []byte, error)) refs.Request[T] {
	return refs.Request[T]{
		Key:    r.Header.Get("Idempotency-Key"),
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query().Encode(),
		Body:   body,
		Render: render,
	}
}

// render returns a Render that encodes view(v) with status created when the
// write created something, else 200.
func render[T, V any](created int, view func(T) V) func(T, bool) (int, []byte, error) {
	return func(v T, wasCreated bool) (int, []byte, error) {
		status := created
		if !wasCreated {
			status = http.StatusOK
		}
		body, err := encodeJSON(view(v))
		return status, body, err
	}
}

// writeAnswer sends the answer of a creating request (maybe a replay).
func writeAnswer(w http.ResponseWriter, r *http.Request, ans refs.Answer) error {
	if ans.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeBody(w, r, ans.Status, ans.Body)
	return nil
}

func (a *api) createCollection(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var in collectionIn
	sum, err := decodeJSON(r, a.opt.MaxJSONBytes, false, &in)
	if err != nil {
		return err
	}
	c := index.NewCollection{
		CollectionFields: index.CollectionFields{
			Name:        str(in.Name),
			Description: str(in.Description),
			Owner:       str(in.Owner),
			Author:      str(in.Author),
			License:     str(in.License),
		},
		GarbageCollect: in.GarbageCollect != nil && *in.GarbageCollect,
	}
	ans, err := a.svc.CreateCollection(r.Context(), c, retryRequest(r, &sum, render(http.StatusCreated, collectionView)))
	if err != nil {
		return err
	}
	return writeAnswer(w, r, ans)
}

func (a *api) patchCollection(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	var in collectionIn
	if _, err := decodeJSON(r, a.opt.MaxJSONBytes, false, &in); err != nil {
		return err
	}
	c, err := a.svc.UpdateCollection(r.Context(), id, index.CollectionPatch{
		Name:           in.Name,
		Description:    in.Description,
		Owner:          in.Owner,
		Author:         in.Author,
		License:        in.License,
		GarbageCollect: in.GarbageCollect,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, collectionView(c))
}

func (a *api) deleteCollection(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	recursive, err := boolQuery(r, "recursive")
	if err != nil {
		return err
	}
	if err := a.svc.DeleteCollection(r.Context(), id, recursive != nil && *recursive); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getCollection serves the latest version, or version {n}.
func (a *api) getCollection(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	ref, err := refParam(p)
	if err != nil {
		return err
	}
	if ref.Draft {
		return fmt.Errorf("%w: collections have no drafts", index.ErrNotFound)
	}
	c, err := a.svc.Collection(r.Context(), ref.ID, ref.Version)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, collectionView(c))
}

func (a *api) listCollections(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	page, err := a.svc.Collections(r.Context(), opt)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, collectionsView(page))
}

// nameFilter adds ?name= to the options of a collection's contents.
func nameFilter(r *http.Request, opt *index.ListOptions) {
	if name := strQuery(r, "name"); name != nil {
		opt.Name, opt.HasName = *name, true
	}
}

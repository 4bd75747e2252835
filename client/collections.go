package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
)

func listQuery(opt ListOptions) (url.Values, error) {
	q := url.Values{}
	if opt.Limit < 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrInvalid, opt.Limit)
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	if opt.Cursor != "" {
		q.Set("cursor", opt.Cursor)
	}
	if opt.Name != nil {
		q.Set("name", *opt.Name)
	}
	return q, nil
}

// list fetches one page of the list at path.
func list[T any](ctx context.Context, c *Client, path string, opt ListOptions) (Page[T], error) {
	q, err := listQuery(opt)
	if err != nil {
		return Page[T]{}, err
	}
	var p Page[T]
	_, err = c.call(ctx, &request{method: http.MethodGet, path: path, query: q}, &p)
	if p.Items == nil {
		p.Items = []T{}
	}
	return p, err
}

// get fetches the JSON object at path into out.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	_, err := c.call(ctx, &request{method: http.MethodGet, path: path, query: q}, out)
	return err
}

// versionedPath is base for Latest, else base/versions/{n}.
func versionedPath(base string, at At) (string, error) {
	if at.IsLatest() {
		return base, nil
	}
	seg, err := at.segment()
	if err != nil {
		return "", err
	}
	return base + "/versions/" + seg, nil
}

func collectionPath(id uuid.UUID) string { return apiPrefix + "/collections/" + id.String() }

// CreateCollection creates a collection at version 1.
func (c *Client) CreateCollection(ctx context.Context, nc NewCollection) (Collection, error) {
	r, err := jsonRequest(http.MethodPost, apiPrefix+"/collections", nc)
	if err != nil {
		return Collection{}, err
	}
	var out Collection
	_, err = c.call(ctx, r.creating(), &out)
	return out, err
}

// Collection returns a version of a collection (Latest or Version(n);
// collections have no drafts).
func (c *Client) Collection(ctx context.Context, id uuid.UUID, at At) (Collection, error) {
	p, err := versionedPath(collectionPath(id), at)
	if err != nil {
		return Collection{}, err
	}
	var out Collection
	return out, c.get(ctx, p, nil, &out)
}

// Collections returns a page of the collections, latest version of each.
func (c *Client) Collections(ctx context.Context, opt ListOptions) (Page[Collection], error) {
	return list[Collection](ctx, c, apiPrefix+"/collections", opt)
}

// UpdateCollection changes the fields set in p: a new version, or the
// latest one when nothing changes.
func (c *Client) UpdateCollection(ctx context.Context, id uuid.UUID, p CollectionPatch) (Collection, error) {
	r, err := jsonRequest(http.MethodPatch, collectionPath(id), p)
	if err != nil {
		return Collection{}, err
	}
	var out Collection
	_, err = c.call(ctx, r, &out)
	return out, err
}

// CollectionVersions returns a page of a collection's history, newest first.
func (c *Client) CollectionVersions(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[Collection], error) {
	return list[Collection](ctx, c, collectionPath(id)+"/versions", opt)
}

// CollectionUnits returns a page of the units of a collection, latest
// version of each; opt.Name filters by name.
func (c *Client) CollectionUnits(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[Unit], error) {
	return list[Unit](ctx, c, collectionPath(id)+"/units", opt)
}

// CollectionAssets returns a page of the assets of a collection, latest
// version of each; opt.Name filters by name.
func (c *Client) CollectionAssets(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[Asset], error) {
	return list[Asset](ctx, c, collectionPath(id)+"/assets", opt)
}

// DeleteCollection deletes an empty collection, or with recursive one and
// everything in it.
func (c *Client) DeleteCollection(ctx context.Context, id uuid.UUID, recursive bool) error {
	q := url.Values{}
	if recursive {
		q.Set("recursive", "true")
	}
	_, err := c.call(ctx, &request{method: http.MethodDelete, path: collectionPath(id), query: q, deleting: true}, nil)
	return err
}

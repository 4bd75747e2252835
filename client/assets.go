package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
)

// DefaultMediaType is the media type of an asset created without one.
const DefaultMediaType = "application/octet-stream"

// reuploadRounds bounds how often a write over a hash re-uploads the blob
// and tries again (a sweep would have to take the blob each time).
const reuploadRounds = 3

func assetPath(id uuid.UUID) string { return apiPrefix + "/assets/" + id.String() }

// writeAsset sends an asset version in either form of API.md: the bytes in
// the body, or a hash in the query. With a hash and content.Body, a 404
// whose cause is the blob (a HEAD says it is missing) uploads the bytes
// again and retries with a new idempotency key: the 404 was an answer, not a
// lost request.
func (c *Client) writeAsset(ctx context.Context, method, path string, q url.Values, mediaType *string, content Content, creating bool, out *Asset) (int, error) {
	for round := 0; ; round++ {
		r := &request{method: method, path: path, query: url.Values{}, header: http.Header{}}
		for k, v := range q {
			r.query[k] = v
		}
		if content.Hash.IsZero() {
			r.body = content.Body
			if mediaType != nil {
				r.header.Set("Content-Type", *mediaType)
			}
		} else {
			r.query.Set("hash", content.Hash.String())
			if mediaType != nil {
				r.query.Set("media_type", *mediaType)
			}
		}
		if creating {
			r.creating()
		}
		status, err := c.call(ctx, r, out)
		if err == nil || content.Hash.IsZero() || content.Body.IsZero() || round+1 >= reuploadRounds || !errors.Is(err, ErrNotFound) {
			return status, err
		}
		if _, herr := c.StatBlob(ctx, content.Hash); herr == nil {
			return status, err // the 404 is about something else (the asset, the collection)
		} else if !errors.Is(herr, ErrNotFound) {
			return status, fmt.Errorf("%w (and asking whether blob %s is stored: %w)", err, content.Hash, herr)
		}
		if _, perr := c.PutBlob(ctx, content.Hash, content.Body); perr != nil {
			return status, fmt.Errorf("client: upload blob %s again after %w: %w", content.Hash, err, perr)
		}
	}
}

func (ch AssetChange) query() url.Values {
	q := url.Values{}
	if ch.Name != nil {
		q.Set("name", *ch.Name)
	}
	if ch.GarbageCollect != nil {
		q.Set("garbage_collect", strconv.FormatBool(*ch.GarbageCollect))
	}
	return q
}

// CreateAsset creates an asset at version 1 from content: streamed bytes,
// or a blob already stored (re-uploaded from content.Body when the server
// says it is gone).
func (c *Client) CreateAsset(ctx context.Context, na NewAsset, content Content) (Asset, error) {
	q := url.Values{}
	q.Set("collection", na.Collection.String())
	q.Set("name", na.Name)
	q.Set("garbage_collect", strconv.FormatBool(na.GarbageCollect))
	mt := na.MediaType
	if mt == "" {
		mt = DefaultMediaType
	}
	var out Asset
	_, err := c.writeAsset(ctx, http.MethodPost, apiPrefix+"/assets", q, &mt, content, true, &out)
	return out, err
}

// NewAssetVersion adds a version to an asset. created is false when the
// version was identical to the latest, which the server returns instead.
func (c *Client) NewAssetVersion(ctx context.Context, id uuid.UUID, ch AssetChange, content Content) (a Asset, created bool, err error) {
	status, err := c.writeAsset(ctx, http.MethodPost, assetPath(id)+"/versions", ch.query(), ch.MediaType, content, true, &a)
	return a, status == http.StatusCreated, err
}

// PutAssetDraft creates or replaces the draft of an asset.
func (c *Client) PutAssetDraft(ctx context.Context, id uuid.UUID, ch AssetChange, content Content) (Asset, error) {
	var out Asset
	_, err := c.writeAsset(ctx, http.MethodPut, assetPath(id)+"/draft", ch.query(), ch.MediaType, content, false, &out)
	return out, err
}

// PublishAssetDraft makes the draft the next numbered version.
func (c *Client) PublishAssetDraft(ctx context.Context, id uuid.UUID) (Asset, error) {
	r := (&request{method: http.MethodPost, path: assetPath(id) + "/draft/publish"}).creating()
	var out Asset
	_, err := c.call(ctx, r, &out)
	return out, err
}

// DeleteAssetDraft deletes the draft of an asset.
func (c *Client) DeleteAssetDraft(ctx context.Context, id uuid.UUID) error {
	_, err := c.call(ctx, &request{method: http.MethodDelete, path: assetPath(id) + "/draft", deleting: true}, nil)
	return err
}

// Asset returns a version of an asset's metadata (Latest, Draft or Version(n)).
func (c *Client) Asset(ctx context.Context, id uuid.UUID, at At) (Asset, error) {
	p, err := versionedPath(assetPath(id), at)
	if err != nil {
		return Asset{}, err
	}
	var out Asset
	return out, c.get(ctx, p, nil, &out)
}

// AssetVersions returns a page of an asset's history, newest first.
func (c *Client) AssetVersions(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[Asset], error) {
	return list[Asset](ctx, c, assetPath(id)+"/versions", opt)
}

// AssetContent streams the bytes of a version of an asset, or a range of
// them. The caller must Close the Download.
func (c *Client) AssetContent(ctx context.Context, id uuid.UUID, at At, opt GetOptions) (*Download, error) {
	p, err := versionedPath(assetPath(id), at)
	if err != nil {
		return nil, err
	}
	return c.download(ctx, p+"/content", opt, true)
}

// AssetLinkedBy returns a page of the units whose latest published version
// links to this asset.
func (c *Client) AssetLinkedBy(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[LinkingUnit], error) {
	return list[LinkingUnit](ctx, c, assetPath(id)+"/linked-by", opt)
}

// DeleteAsset deletes an asset and all its versions.
func (c *Client) DeleteAsset(ctx context.Context, id uuid.UUID) error {
	_, err := c.call(ctx, &request{method: http.MethodDelete, path: assetPath(id), deleting: true}, nil)
	return err
}

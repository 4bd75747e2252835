package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/blockstore/blockstore/cas"
)

// MaxMissingBatch is the most hashes one MissingBlobs call may name.
const MaxMissingBatch = 10000

// GetOptions qualify a download. The zero value asks for all the bytes.
type GetOptions struct {
	// Offset and Length ask for a range: Length bytes from Offset (Length 0:
	// to the end). A range the server cannot satisfy is ErrRangeNotSatisfiable.
	Offset, Length int64
	// IfNoneMatch is sent as If-None-Match (an ETag, quoted); a match
	// answers NotModified.
	IfNoneMatch string
}

// Download is a streamed answer. The caller must Close Body.
type Download struct {
	Body io.ReadCloser
	// Status is 200, 206 for a range, 304 when not modified.
	Status int
	// Size is the number of bytes Body gives (-1 when the server did not say).
	Size int64
	// Total is the length of the whole content (from Content-Range on a
	// partial answer; else Size).
	Total       int64
	ContentType string
	ETag        string
	// Start is the offset of Body's first byte in the whole content.
	Start int64
}

// NotModified reports whether the server answered 304 (IfNoneMatch matched).
func (d *Download) NotModified() bool { return d.Status == http.StatusNotModified }

// Close closes Body.
func (d *Download) Close() error { return d.Body.Close() }

func (o GetOptions) apply(r *request) error {
	if o.Offset < 0 || o.Length < 0 {
		return fmt.Errorf("%w: range offset %d length %d", ErrInvalid, o.Offset, o.Length)
	}
	if o.Offset > 0 || o.Length > 0 {
		rng := "bytes=" + strconv.FormatInt(o.Offset, 10) + "-"
		if o.Length > 0 {
			rng += strconv.FormatInt(o.Offset+o.Length-1, 10)
		}
		r.header.Set("Range", rng)
	}
	if o.IfNoneMatch != "" {
		r.header.Set("If-None-Match", o.IfNoneMatch)
	}
	return nil
}

// download sends a GET and returns its body unread. A redirectable path
// (a blob's or an asset's content) is asked with `Prefer: redirect` when
// the client prefers redirects.
func (c *Client) download(ctx context.Context, path string, opt GetOptions, redirectable bool) (*Download, error) {
	r := &request{method: http.MethodGet, path: path, header: http.Header{}}
	if err := opt.apply(r); err != nil {
		return nil, err
	}
	// A conditional GET stays with the server: the blob store's ETags are
	// not Blockstore's.
	if redirectable && c.preferRedirect && opt.IfNoneMatch == "" {
		r.header.Set("Prefer", "redirect")
		r.noFollow = true
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if r.noFollow && resp.StatusCode == http.StatusTemporaryRedirect {
		resp, err = c.followRedirect(ctx, r, resp)
		if err != nil {
			return nil, err
		}
	}
	d := &Download{
		Body:        resp.Body,
		Status:      resp.StatusCode,
		Size:        resp.ContentLength,
		Total:       resp.ContentLength,
		ContentType: resp.Header.Get("Content-Type"),
		ETag:        resp.Header.Get("ETag"),
	}
	if resp.StatusCode == http.StatusPartialContent {
		var start, end, total int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &total); err == nil {
			d.Start, d.Total = start, total
		} else {
			d.Total = -1
		}
	}
	return d, nil
}

func blobPath(h cas.Hash) string { return apiPrefix + "/blobs/" + h.String() }

// StatBlob returns the size of the blob stored under h (HEAD, which renews
// its lease), or an error matching ErrNotFound.
func (c *Client) StatBlob(ctx context.Context, h cas.Hash) (int64, error) {
	resp, err := c.do(ctx, &request{method: http.MethodHead, path: blobPath(h)})
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

// GetBlob streams the bytes of the blob under h. The caller must Close the
// Download.
func (c *Client) GetBlob(ctx context.Context, h cas.Hash, opt GetOptions) (*Download, error) {
	return c.download(ctx, blobPath(h), opt, true)
}

// PutBlob stores body under h, a hash the caller computed. It reports
// whether the blob is new (201) or was already stored (200). Bytes that hash
// otherwise are ErrHashMismatch and store nothing.
func (c *Client) PutBlob(ctx context.Context, h cas.Hash, body Body) (created bool, err error) {
	r := &request{method: http.MethodPut, path: blobPath(h), body: body, header: http.Header{}}
	r.header.Set("Content-Type", "application/octet-stream")
	status, err := c.call(ctx, r, nil)
	if err != nil {
		return false, err
	}
	return status == http.StatusCreated, nil
}

// PostBlob stores body and returns its hash and size.
func (c *Client) PostBlob(ctx context.Context, body Body) (StoredBlob, error) {
	r := (&request{method: http.MethodPost, path: apiPrefix + "/blobs", body: body, header: http.Header{}}).creating()
	r.header.Set("Content-Type", "application/octet-stream")
	var out StoredBlob
	_, err := c.call(ctx, r, &out)
	return out, err
}

// MissingBlobs returns those of hs that the server does not store, in the
// server's order, renewing the lease of those it does. Any number of hashes
// may be given: they are asked in batches of MaxMissingBatch.
func (c *Client) MissingBlobs(ctx context.Context, hs []cas.Hash) ([]cas.Hash, error) {
	missing := []cas.Hash{}
	for start := 0; start < len(hs); start += MaxMissingBatch {
		batch := hs[start:min(start+MaxMissingBatch, len(hs))]
		r, err := jsonRequest(http.MethodPost, apiPrefix+"/blobs/missing", map[string][]cas.Hash{"hashes": batch})
		if err != nil {
			return nil, err
		}
		var out struct {
			Missing []cas.Hash `json:"missing"`
		}
		if _, err := c.call(ctx, r, &out); err != nil {
			return nil, err
		}
		missing = append(missing, out.Missing...)
	}
	return missing, nil
}

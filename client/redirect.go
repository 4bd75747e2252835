package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// followRedirect fetches the Location of a 307 that answered r (a GET with
// `Prefer: redirect`): a presigned URL of the blob store, sent no token (it
// carries its own signature) and only r's Range. When that fetch fails, the
// bytes are asked of the server again without the preference, so that a
// blob store the client cannot reach costs a round trip, not the download.
// Errors never print the URL: its query is a credential.
func (c *Client) followRedirect(ctx context.Context, r *request, resp *http.Response) (*http.Response, error) {
	loc, err := resp.Location()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err == nil {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
		if rerr == nil {
			if rng := r.header.Get("Range"); rng != "" {
				req.Header.Set("Range", rng)
			}
			req.Header.Set("User-Agent", c.userAgent)
			got, ferr := c.noFollow.Do(req)
			switch {
			case ferr == nil && (got.StatusCode == http.StatusOK || got.StatusCode == http.StatusPartialContent):
				// The blob store's ETag is not Blockstore's.
				got.Header.Del("ETag")
				return got, nil
			case ferr == nil:
				got.Body.Close()
			}
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("client: GET %s (redirected to the blob store): %w", r.path, ctx.Err())
	}
	direct := &request{method: r.method, path: r.path, query: r.query, header: r.header.Clone()}
	direct.header.Del("Prefer")
	return c.do(ctx, direct)
}

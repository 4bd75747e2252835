package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// MaxResolveBatch is the most refs one resolve request may name.
const MaxResolveBatch = 1000

// Resolve looks up many refs ("uuid", "uuid@N", "uuid@draft"; see Ref) of
// units, assets or collections. Items and Missing keep the order asked.
// More than MaxResolveBatch refs are asked in several requests.
func (c *Client) Resolve(ctx context.Context, refs []string, includeOLX bool) (Resolution, error) {
	out := Resolution{Items: []ResolvedItem{}, Missing: []string{}}
	for start := 0; start < len(refs); start += MaxResolveBatch {
		batch := refs[start:min(start+MaxResolveBatch, len(refs))]
		r, err := jsonRequest(http.MethodPost, apiPrefix+"/resolve", map[string]any{"refs": batch, "include_olx": includeOLX})
		if err != nil {
			return Resolution{}, err
		}
		var res Resolution
		if _, err := c.call(ctx, r, &res); err != nil {
			return Resolution{}, err
		}
		out.Items = append(out.Items, res.Items...)
		out.Missing = append(out.Missing, res.Missing...)
	}
	return out, nil
}

// GC runs a sweep and waits for its report (409 ErrConflict while another
// sweep runs anywhere).
func (c *Client) GC(ctx context.Context, req GCRequest) (Report, error) {
	r, err := jsonRequest(http.MethodPost, apiPrefix+"/gc", req.body(true))
	if err != nil {
		return Report{}, err
	}
	var out Report
	_, err = c.call(ctx, r.creating(), &out)
	return out, err
}

// StartGC starts a sweep and returns its id at once; GCRun follows it.
func (c *Client) StartGC(ctx context.Context, req GCRequest) (string, error) {
	r, err := jsonRequest(http.MethodPost, apiPrefix+"/gc", req.body(false))
	if err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"id"`
	}
	_, err = c.call(ctx, r.creating(), &out)
	return out.ID, err
}

// GCRuns returns a page of recent sweep reports, newest first.
func (c *Client) GCRuns(ctx context.Context, opt ListOptions) (Page[Report], error) {
	q, err := listQuery(opt)
	if err != nil {
		return Page[Report]{}, err
	}
	var raw json.RawMessage
	if err := c.get(ctx, apiPrefix+"/gc/runs", q, &raw); err != nil {
		return Page[Report]{}, err
	}
	var p Page[Report]
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		err = json.Unmarshal(raw, &p.Items)
	} else {
		err = json.Unmarshal(raw, &p)
	}
	if err != nil {
		return Page[Report]{}, fmt.Errorf("client: GET %s/gc/runs: %w", apiPrefix, err)
	}
	if p.Items == nil {
		p.Items = []Report{}
	}
	return p, nil
}

// GCRun returns one sweep's report, with its progress while it runs.
func (c *Client) GCRun(ctx context.Context, id string) (Report, error) {
	var out Report
	return out, c.get(ctx, apiPrefix+"/gc/runs/"+url.PathEscape(id), nil, &out)
}

// Healthz returns nil when the server process answers.
func (c *Client) Healthz(ctx context.Context) error {
	_, err := c.call(ctx, &request{method: http.MethodGet, path: "/healthz"}, nil)
	return err
}

// Readyz returns nil when the server's index and blob store answer; a 503
// is not retried here (readiness is what the caller asks about).
func (c *Client) Readyz(ctx context.Context) error {
	resp, err := c.send(ctx, &request{method: http.MethodGet, path: "/readyz"})
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return c.decodeError(&request{method: http.MethodGet, path: "/readyz"}, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	return nil
}

// maxMetrics bounds the metrics text the client reads.
const maxMetrics = 64 << 20

// Metrics returns the server's metrics in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/metrics"})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetrics+1))
	if err != nil {
		return "", fmt.Errorf("client: GET /metrics: %w", err)
	}
	if len(b) > maxMetrics {
		return "", fmt.Errorf("client: GET /metrics: more than %s bytes", strconv.Itoa(maxMetrics))
	}
	return string(b), nil
}

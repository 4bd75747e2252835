package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// reply is one answer, read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

var testClient = &http.Client{
	Timeout: time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// call sends method to e.URL+path with body (nil, []byte, string, io.Reader
// streamed without a length, or any other value as JSON) and header pairs.
func (e *env) call(tb testing.TB, method, path string, body any, headers ...string) reply {
	tb.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide the length: chunked
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails unless the status is status, and decodes a JSON body into out
// (when not nil).
func (r reply) want(tb testing.TB, status int, out any) reply {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			tb.Fatalf("decode %s: %v", r.body, err)
		}
	}
	return r
}

// wantError fails unless the answer is the API error of status and code.
func (r reply) wantError(tb testing.TB, status int, code string) apiError {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var e struct{ Error apiError }
	if err := json.Unmarshal(r.body, &e); err != nil {
		tb.Fatalf("error body %q: %v", r.body, err)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		tb.Fatalf("error %+v, want code %q with a message", e.Error, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("error Content-Type %q", ct)
	}
	return e.Error
}

type object = map[string]any

func (e *env) newCollection(tb testing.TB) string {
	tb.Helper()
	var c struct{ UUID string }
	e.call(tb, "POST", "/api/v1/collections", object{"name": "c"}).want(tb, http.StatusCreated, &c)
	return c.UUID
}

type unitOut struct {
	UUID    string
	Version *int64
	Hash    string
	Size    int64
	Links   []struct {
		Target   string
		Kind     string
		Version  *int64
		Resolved *struct {
			UUID    string
			Kind    string
			Version *int64
			Hash    string
			Size    int64
		}
	}
}

func (e *env) newUnit(tb testing.TB, coll, olx string, links ...object) unitOut {
	tb.Helper()
	body := object{"collection": coll, "olx": olx}
	if links != nil {
		body["links"] = links
	}
	var u unitOut
	e.call(tb, "POST", "/api/v1/units", body).want(tb, http.StatusCreated, &u)
	return u
}

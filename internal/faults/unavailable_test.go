package faults

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// TestUnavailableSaysWhatNotWhere: with PostgreSQL unreachable, requests and
// /readyz answer 503 with a message that says the index is unavailable and
// shows none of the connection's details (host, port, user, database name),
// which the server logs instead.
func TestUnavailableSaysWhatNotWhere(t *testing.T) {
	t.Parallel()
	d, proxy, u := productionBehindProxy(t)
	s := startServer(t, d.env, d.args...)
	proxy.Set(Down)

	dbName := strings.TrimPrefix(u.Path, "/")
	secret := []string{dbName, proxy.Addr(), u.Host, "user=", "database=", "host=", "127.0.0.1", u.User.Username() + "@"}
	hc := &http.Client{Timeout: requestBound}
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/api/v1/collections", `{"name":"c"}`},
		{"GET", "/api/v1/collections", ""},
		{"GET", "/api/v1/blobs/" + cas.Sum([]byte("x")).String(), ""},
		{"GET", "/readyz", ""},
	} {
		r, err := http.NewRequest(req.method, s.URL+req.path, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", req.method, req.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code, Message string }
		}
		if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != "unavailable" {
			t.Errorf("%s %s: %d %s, want 503 unavailable", req.method, req.path, resp.StatusCode, body)
			continue
		}
		if !strings.Contains(e.Error.Message, "the index is unavailable") {
			t.Errorf("%s %s: message %q does not say the index is unavailable", req.method, req.path, e.Error.Message)
		}
		for _, sub := range secret {
			if sub != "" && strings.Contains(string(body), sub) {
				t.Errorf("%s %s: the 503 body shows %q: %s", req.method, req.path, sub, body)
			}
		}
	}
	// The detail is in the server's log, for the operator.
	if err := waitFor(10*time.Second, func() error {
		if !strings.Contains(s.logs.tail(200), dbName) {
			return io.EOF
		}
		return nil
	}); err != nil {
		t.Errorf("the server's log does not name the database that failed:\n%s", s.logs.tail(40))
	}
}

package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/internal/testenv"
)

// TestMetricsAndLogs: /metrics counts requests by route and code, bytes in
// and out and blobs stored; every request is one structured log line; and
// no secret (the database password, the S3 secret key, a token) appears in
// a log line, an error or a metric.
func TestMetricsAndLogs(t *testing.T) {
	const password, secretKey, token = "db-pass-7f3a", "blockstoretest-secret", "token-9c2e"
	dbURL := testenv.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password) // trust auth ignores it
	s3 := testenv.MinIO(t)
	if s3.SecretKey != secretKey {
		t.Fatalf("the test MinIO's secret changed: update this test")
	}
	var logs bytes.Buffer
	cfg := Config{
		DatabaseURL: u.String(),
		S3:          s3Config(s3, "metrics-"+randomHex(4)),
		Tokens:      Tokens{Write: token},
		Logger:      slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	a, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	base := serve(t, a)
	do := func(method, path string, body []byte) (int, string) {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Request-Id", "req-"+method)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	blob := bytes.Repeat([]byte("metered "), 1000)
	h := cas.Sum(blob)
	code, putAnswer := do("PUT", "/api/v1/blobs/"+h.String(), blob)
	if code != 201 {
		t.Fatalf("PUT: %d %s", code, putAnswer)
	}
	if code, _ := do("GET", "/api/v1/blobs/"+h.String(), nil); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	if code, _ := do("GET", "/api/v1/units/"+strings.Repeat("0", 8)+"-0000-4000-8000-000000000000", nil); code != 404 {
		t.Fatalf("GET missing unit: %d", code)
	}
	code, metrics := do("GET", "/metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`blockstore_http_requests_total{code="201",method="PUT",route="/api/v1/blobs/:hash"} 1`,
		`blockstore_http_requests_total{code="404",method="GET",route="/api/v1/units/:uuid"} 1`,
		`blockstore_http_request_duration_seconds_bucket{method="GET",route="/api/v1/blobs/:hash"`,
		`blockstore_http_request_body_bytes_total{route="/api/v1/blobs/:hash"} 8000`,
		fmt.Sprintf(`blockstore_http_response_body_bytes_total{route="/api/v1/blobs/:hash"} %d`, 8000+len(putAnswer)),
		`blockstore_blobs_stored_total 1`,
		`blockstore_blob_store_bytes_total{op="put"} 8000`,
		`blockstore_index_operation_duration_seconds_count{op="begin_blob"}`,
		`blockstore_index_errors_total{op="update"} 0`,
		`blockstore_blob_store_errors_total{op="put"} 0`,
		`blockstore_gc_`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(logs.String(), `"route":"/api/v1/blobs/:hash","status":201`) ||
		!strings.Contains(logs.String(), `"request_id":"req-PUT"`) {
		t.Errorf("no structured request log line:\n%s", logs.String())
	}
	// A failing database connection must not print the password either.
	bad := *u
	bad.Host = "127.0.0.1:1"
	_, err = Open(context.Background(), Config{DatabaseURL: bad.String(), DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("open with an unreachable database succeeded")
	}
	for _, secret := range []string{password, secretKey, token} {
		for what, text := range map[string]string{"logs": logs.String(), "metrics": metrics, "error": err.Error()} {
			if strings.Contains(text, secret) {
				t.Errorf("the secret %q appears in the %s", secret, what)
			}
		}
	}
}

// TestGroupCommitMetrics: the embedded engine exports its WAL syncs and the
// commits they made durable; concurrent writers share syncs, so the second
// never trails the first and covers every commit acknowledged.
func TestGroupCommitMetrics(t *testing.T) {
	a, err := Open(context.Background(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	base := serve(t, a)
	metric := func(name string) float64 {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				var f float64
				if _, err := fmt.Sscan(v, &f); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return f
			}
		}
		t.Fatalf("/metrics lacks %s", name)
		return 0
	}
	syncs0, commits0 := metric("blockstore_index_wal_syncs_total"), metric("blockstore_index_synced_commits_total")
	const writers, each = 4, 10
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				body := fmt.Sprintf(`{"name":"c-%d-%d"}`, w, i)
				resp, err := http.Post(base+"/api/v1/collections", "application/json", strings.NewReader(body))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("create collection: %s", resp.Status)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	syncs, commits := metric("blockstore_index_wal_syncs_total")-syncs0, metric("blockstore_index_synced_commits_total")-commits0
	if syncs < 1 || commits < writers*each || commits < syncs {
		t.Fatalf("after %d commits: %v syncs covering %v commits", writers*each, syncs, commits)
	}
	t.Logf("%d commits by %d writers: %v syncs covering %v commits", writers*each, writers, syncs, commits)
}

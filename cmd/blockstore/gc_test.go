package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// putBlob stores b through the API; nothing references it.
func putBlob(t *testing.T, base string, b []byte) cas.Hash {
	t.Helper()
	h := cas.Sum(b)
	req, _ := http.NewRequest("PUT", base+"/api/v1/blobs/"+h.String(), bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("PUT blob: %v %v", resp, err)
	}
	resp.Body.Close()
	return h
}

func blobStatus(t *testing.T, base string, h cas.Hash) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/blobs/"+h.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestScheduledSweeps: serve --gc-interval runs sweeps by itself; with a
// grace of 0s an unreferenced blob goes at the next one, and the runs are
// listed.
func TestScheduledSweeps(t *testing.T) {
	s := startServer(t, "--data", filepath.Join(t.TempDir(), "data"), "--gc-interval", "300ms", "--gc-grace", "0s", "--gc-max-delete-share", "1")
	h := putBlob(t, s.URL, []byte("garbage the schedule collects"))
	deadline := time.Now().Add(20 * time.Second)
	for blobStatus(t, s.URL, h) != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatalf("the unreferenced blob is still there after 20s of scheduled sweeps\n%s", s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get(s.URL + "/api/v1/gc/runs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var runs struct {
		Items []struct {
			ID           string `json:"id"`
			BlobsDeleted int64  `json:"blobs_deleted"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&runs); err != nil || len(runs.Items) == 0 {
		t.Fatalf("gc runs: %+v, %v", runs, err)
	}
}

// TestGCCommandOnProduction runs `blockstore gc` on PostgreSQL + S3 directly
// (no serve holds them): a dry run removes nothing, a sweep removes the
// unreferenced blob and reports it.
func TestGCCommandOnProduction(t *testing.T) {
	db := testenv.NewDatabase(t)
	s3 := testenv.MinIO(t)
	stores := []string{"--database-url", db, "--s3-endpoint", s3.Endpoint, "--s3-bucket", "gc-cli", "--s3-insecure",
		"--s3-access-key", s3.AccessKey, "--s3-secret-key", s3.SecretKey}
	s := startServer(t, stores...)
	h := putBlob(t, s.URL, []byte("garbage on postgres and s3"))
	bin, _ := buildBinary()
	gcRun := func(args ...string) (deleted int64, notes []string, err error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(append([]string{"gc", "--grace", "0s", "--json"}, stores...), args...)...).Output()
		var rep struct {
			DryRun       bool     `json:"dry_run"`
			BlobsDeleted int64    `json:"blobs_deleted"`
			Notes        []string `json:"notes"`
		}
		if jerr := json.Unmarshal(out, &rep); jerr != nil {
			t.Fatalf("gc --json: %v (exit %v)\n%s", jerr, err, out)
		}
		return rep.BlobsDeleted, rep.Notes, err
	}
	// The only blob is garbage: all of the store, more than the default
	// --gc-max-delete-share of a half.
	n, notes, err := gcRun("--dry-run")
	if err != nil || n != 1 || blobStatus(t, s.URL, h) != 200 || !strings.Contains(strings.Join(notes, "\n"), "more than the limit of 50%") {
		t.Fatalf("dry run: would delete %d (%v), notes %q, blob status %d; want 1, a warning, and still there", n, err, notes, blobStatus(t, s.URL, h))
	}
	n, notes, err = gcRun()
	if err == nil || n != 0 || blobStatus(t, s.URL, h) != 200 || !strings.Contains(strings.Join(notes, "\n"), "stopped before deleting any blob") {
		t.Fatalf("unforced sweep: exit %v, deleted %d, notes %q, blob status %d; want a failure, 0, and still there", err, n, notes, blobStatus(t, s.URL, h))
	}
	if n, _, err := gcRun("--gc-allow-mass-delete"); err != nil || n != 1 || blobStatus(t, s.URL, h) != http.StatusNotFound {
		t.Fatalf("forced sweep: deleted %d (%v), blob status %d; want 1 and gone", n, err, blobStatus(t, s.URL, h))
	}
}

// gcCLI runs `blockstore gc` with args and returns its output and error.
func gcCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"gc"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestGCThroughServerSendsExplicitZero: `gc --server URL --grace 0s` sweeps
// with no grace (not the server's 24h), and the text report shows the
// status and the notes.
func TestGCThroughServerSendsExplicitZero(t *testing.T) {
	s := startServer(t, "--data", filepath.Join(t.TempDir(), "data"), "--gc-max-delete-share", "1")
	h := putBlob(t, s.URL, []byte("garbage a zero grace collects at once"))
	out, err := gcCLI(t, "--server", s.URL, "--grace", "0s", "--dry-run")
	if err != nil || !strings.Contains(out, "succeeded") || !strings.Contains(out, "note") {
		t.Fatalf("dry run through the server: %v\n%s\nwant the status and its notes", err, out)
	}
	out, err = gcCLI(t, "--server", s.URL, "--grace", "0s", "--retention", "0s")
	if err != nil {
		t.Fatalf("gc --server --grace 0s: %v\n%s", err, out)
	}
	if st := blobStatus(t, s.URL, h); st != http.StatusNotFound {
		t.Fatalf("after gc --server --grace 0s the unreferenced blob answers %d, want 404\n%s", st, out)
	}
	if !strings.Contains(out, "0s") && !strings.Contains(out, "succeeded") {
		t.Errorf("text report lacks its status:\n%s", out)
	}
}

// TestGCThroughServerShowsRefusal: a sweep the server's guard stops prints
// its status, error and notes, and exits with an error; forced, it deletes.
func TestGCThroughServerShowsRefusal(t *testing.T) {
	s := startServer(t, "--data", filepath.Join(t.TempDir(), "data"))
	h := putBlob(t, s.URL, []byte("all of the store is garbage"))
	out, err := gcCLI(t, "--server", s.URL, "--grace", "0s")
	if err == nil || !strings.Contains(out, "failed") || !strings.Contains(out, "error") ||
		!strings.Contains(out, "stopped before deleting any blob") || blobStatus(t, s.URL, h) != http.StatusOK {
		t.Fatalf("refused sweep through the server: exit %v, blob %d\n%s", err, blobStatus(t, s.URL, h), out)
	}
	if out, err := gcCLI(t, "--server", s.URL, "--grace", "0s", "--gc-allow-mass-delete"); err != nil || blobStatus(t, s.URL, h) != http.StatusNotFound {
		t.Fatalf("forced sweep through the server: %v, blob %d\n%s", err, blobStatus(t, s.URL, h), out)
	}
}

// TestGCRunsPaginate: GET /api/v1/gc/runs pages with limit and cursor as
// every list does.
func TestGCRunsPaginate(t *testing.T) {
	s := startServer(t, "--data", filepath.Join(t.TempDir(), "data"))
	for range 3 {
		if out, err := gcCLI(t, "--server", s.URL, "--dry-run"); err != nil {
			t.Fatalf("gc: %v\n%s", err, out)
		}
	}
	type page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	get := func(query string) (page, int) {
		t.Helper()
		resp, err := http.Get(s.URL + "/api/v1/gc/runs" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p page
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
		}
		return p, resp.StatusCode
	}
	all, code := get("")
	if code != 200 || len(all.Items) != 3 || all.NextCursor != nil {
		t.Fatalf("all runs: %d %+v", code, all)
	}
	var ids []string
	query := "?limit=2"
	for range 5 {
		p, code := get(query)
		if code != 200 {
			t.Fatalf("page %q: %d", query, code)
		}
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if p.NextCursor == nil {
			break
		}
		query = "?limit=2&cursor=" + *p.NextCursor
	}
	if len(ids) != 3 || ids[0] != all.Items[0].ID || ids[1] != all.Items[1].ID || ids[2] != all.Items[2].ID {
		t.Fatalf("paged ids %v, want %v", ids, all.Items)
	}
	for _, q := range []string{"?cursor=%21%21", "?cursor=bm8tc3VjaC1ydW4", "?limit=1001", "?limit=0"} {
		if _, code := get(q); code != http.StatusBadRequest {
			t.Errorf("GET /api/v1/gc/runs%s = %d, want 400", q, code)
		}
	}
}

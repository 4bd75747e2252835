package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
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
	s := startServer(t, "--data", filepath.Join(t.TempDir(), "data"), "--gc-interval", "300ms", "--gc-grace", "0s")
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
	gcRun := func(args ...string) (deleted int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(append([]string{"gc", "--grace", "0s", "--json"}, stores...), args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("gc %v: %v\n%s", args, err, out)
		}
		var rep struct {
			DryRun       bool  `json:"dry_run"`
			BlobsDeleted int64 `json:"blobs_deleted"`
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("gc --json: %v\n%s", err, out)
		}
		return rep.BlobsDeleted
	}
	if n := gcRun("--dry-run"); n != 1 || blobStatus(t, s.URL, h) != 200 {
		t.Fatalf("dry run: would delete %d, blob status %d; want 1 and still there", n, blobStatus(t, s.URL, h))
	}
	if n := gcRun(); n != 1 || blobStatus(t, s.URL, h) != http.StatusNotFound {
		t.Fatalf("sweep: deleted %d, blob status %d; want 1 and gone", n, blobStatus(t, s.URL, h))
	}
}

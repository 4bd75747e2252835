package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// TestVerifyFindsCorruptAndMissingBlobs corrupts a blob on disk and deletes
// another, and checks that verify names both and exits non-zero.
func TestVerifyFindsCorruptAndMissingBlobs(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := startServer(t, "--data", data)
	c, err := client.New(s.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "verify"})
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("<problem>small and referenced</problem>")
	large := bytes.Repeat([]byte("large blob, verified at the end of a read "), 200_000) // ~8 MiB
	other := []byte("a third blob that stays intact")
	var hashes []cas.Hash
	for i, b := range [][]byte{small, large, other} {
		a, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: []string{"s", "l", "o"}[i]}, client.Content{Body: client.BytesBody(b)})
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, a.Hash)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	bin, _ := buildBinary()
	verify := func(args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"verify", "--data", data}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("verify of an intact store: exit %d\n%s", code, out)
	}

	path := func(h cas.Hash) string {
		hs := h.String()
		return filepath.Join(data, "blobs", hs[:2], hs[2:4], hs)
	}
	// Corrupt the large blob (one byte in the middle) and delete the small one.
	f, err := os.OpenFile(path(hashes[1]), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'#'}, int64(len(large)/2)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Remove(path(hashes[0])); err != nil {
		t.Fatal(err)
	}
	code, out := verify("--json")
	if code != exitFailure {
		t.Fatalf("verify of a damaged store: exit %d, want %d\n%s", code, exitFailure, out)
	}
	var rep struct {
		BlobsChecked int64    `json:"blobs_checked"`
		Corrupt      []string `json:"corrupt"`
		Missing      []string `json:"missing"`
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Corrupt) != 1 || rep.Corrupt[0] != hashes[1].String() ||
		len(rep.Missing) != 1 || rep.Missing[0] != hashes[0].String() {
		t.Fatalf("report %+v, want corrupt %s and missing %s", rep, hashes[1], hashes[0])
	}
	if code, out := verify("--sample", "2"); code != exitUsage {
		t.Fatalf("--sample 2: exit %d\n%s", code, out)
	}
}

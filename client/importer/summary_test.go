package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockstore/blockstore/cas"
)

// TestDedupCountsOnlyImportedFiles: bytes of files that failed, or that a
// stopped run never imported, are not "deduplicated": only the bytes of
// imported files that were not sent are.
func TestDedupCountsOnlyImportedFiles(t *testing.T) {
	a := bytes.Repeat([]byte("a"), 1000)
	b := bytes.Repeat([]byte("b"), 2000)
	dir := t.TempDir()
	for name, data := range map[string][]byte{"a.txt": a, "b.txt": b, "copy-of-a.txt": a} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	refuse := func(status int, code string, only *cas.Hash) func(rw http.ResponseWriter, r *http.Request) bool {
		return func(rw http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPut || (only != nil && r.URL.Path != "/api/v1/blobs/"+only.String()) {
				return false
			}
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(status)
			fmt.Fprintf(rw, `{"error":{"code":%q,"message":"injected"}}`, code)
			return true
		}
	}

	t.Run("a failed file", func(t *testing.T) {
		w := newWorld(t)
		hb := cas.Sum(b)
		w.setFault(refuse(http.StatusBadRequest, "bad_request", &hb))
		opt := importOpts("failed")
		opt.Layout = LayoutPlain
		sum, err := Import(context.Background(), w.c, dir, opt)
		if !errors.Is(err, ErrIncomplete) || sum.Failed != 1 {
			t.Fatalf("err = %v, failed = %d", err, sum.Failed)
		}
		// a.txt was sent once; copy-of-a.txt was not sent: 1000 bytes saved.
		if sum.BytesUploaded != 1000 || sum.BytesImported != 2000 || sum.BytesDeduplicated != 1000 || sum.DedupRatio != 0.5 {
			t.Errorf("uploaded %d, imported %d, deduplicated %d (ratio %v); want 1000, 2000, 1000 (0.5)",
				sum.BytesUploaded, sum.BytesImported, sum.BytesDeduplicated, sum.DedupRatio)
		}
	})

	t.Run("a stopped run", func(t *testing.T) {
		w := newWorld(t)
		w.setFault(refuse(http.StatusUnauthorized, "unauthorized", nil))
		opt := importOpts("stopped")
		opt.Layout = LayoutPlain
		sum, err := Import(context.Background(), w.c, dir, opt)
		if err == nil || errors.Is(err, ErrIncomplete) {
			t.Fatalf("err = %v, want the run stopped", err)
		}
		if sum.BytesUploaded != 0 || sum.BytesImported != 0 || sum.BytesDeduplicated != 0 || sum.DedupRatio != 0 {
			t.Errorf("uploaded %d, imported %d, deduplicated %d (ratio %v); want nothing of it",
				sum.BytesUploaded, sum.BytesImported, sum.BytesDeduplicated, sum.DedupRatio)
		}
	})
}

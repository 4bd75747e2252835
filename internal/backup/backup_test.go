package backup

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The round trip, the sweep lock and damaged streams are tested end to end
// over a real deployment in internal/app (backup_test.go) and through the
// binary in cmd/blockstore.

func TestWriteRefusesAnIndexWithoutCheckpoints(t *testing.T) {
	s := New(nil, nil, Options{})
	if _, err := s.Write(context.Background(), io.Discard); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Write without a Checkpointer: %v, want ErrUnsupported", err)
	}
}

func TestReadManifestRefusals(t *testing.T) {
	for name, body := range map[string]string{
		"no manifest":    "",
		"not json":       "{",
		"other format":   `{"format": "other/1", "index_files": [{"name": "MANIFEST-1"}]}`,
		"no index files": `{"format": "blockstore-backup/1"}`,
		"escaping name":  `{"format": "blockstore-backup/1", "index_files": [{"name": "../x"}]}`,
		"unclean name":   `{"format": "blockstore-backup/1", "index_files": [{"name": "a//b"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if body != "" {
				if err := os.WriteFile(filepath.Join(dir, manifestName), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ReadManifest(dir); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("ReadManifest: %v, want ErrIncomplete", err)
			}
		})
	}
	m := Manifest{Format: Format, IndexFiles: []File{{Name: "MANIFEST-000001", Size: 1, BLAKE3: "x"}}, Blobs: 2, BlobBytes: 3}
	dir := t.TempDir()
	if err := writeManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir)
	if err != nil || got.Blobs != 2 || got.IndexBytes() != 1 {
		t.Fatalf("ReadManifest of a written manifest: %+v, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, manifestName+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("writeManifest left its temporary file: %v", err)
	}
}

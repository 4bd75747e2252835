package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/gc"
)

// Format names the format of the backups this package writes and reads.
const Format = "blockstore-backup/1"

const (
	manifestName = "MANIFEST.json"
	indexPrefix  = "index/"
	blobsPrefix  = "blobs/"
	maxManifest  = 64 << 20 // bytes of a manifest entry read at most
)

// Errors of backups and restores; callers branch with errors.Is.
var (
	// ErrUnsupported: the deployment's index is not the embedded one. It
	// wraps errors.ErrUnsupported, which the HTTP API answers with 400.
	ErrUnsupported = fmt.Errorf("backup: not supported by this deployment: %w", errors.ErrUnsupported)
	// ErrBusy: a sweep (or another backup) holds the sweep lock. It wraps
	// gc.ErrRunning, which the HTTP API answers with 409.
	ErrBusy = fmt.Errorf("backup: busy: %w", gc.ErrRunning)
	// ErrIncomplete: a backup stream or directory lacks its manifest or
	// does not match it.
	ErrIncomplete = errors.New("backup: incomplete or damaged")
	// ErrNotEmpty: the target directory of a backup or a restore holds files.
	ErrNotEmpty = errors.New("backup: directory not empty")
)

// Manifest says what a backup holds (MANIFEST.json).
type Manifest struct {
	Format     string    `json:"format"`
	CreatedAt  time.Time `json:"created_at"`
	IndexFiles []File    `json:"index_files"`
	Blobs      int64     `json:"blobs"`
	BlobBytes  int64     `json:"blob_bytes"`
}

// File is one file of the index checkpoint.
type File struct {
	Name   string `json:"name"` // slash-separated, relative to index/
	Size   int64  `json:"size"`
	BLAKE3 string `json:"blake3"`
}

// IndexBytes is the size of the index files together.
func (m Manifest) IndexBytes() int64 {
	var n int64
	for _, f := range m.IndexFiles {
		n += f.Size
	}
	return n
}

// localName reports whether name (slash-separated) stays inside the
// directory it is relative to and is written the one clean way.
func localName(name string) bool {
	return filepath.IsLocal(filepath.FromSlash(name)) && path.Clean(name) == name
}

// ReadManifest reads the manifest of the backup in dir: an error wrapping
// ErrIncomplete when there is none (an interrupted backup) or it does not
// parse. It does not read the files; Restore checks them.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return m, fmt.Errorf("backup: %s: %w", dir, serr)
		}
		return m, fmt.Errorf("%w: %s has no %s (the backup did not finish)", ErrIncomplete, dir, manifestName)
	}
	if err != nil {
		return m, fmt.Errorf("backup: %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrIncomplete, manifestName, err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("%w: %s has format %q, want %q", ErrIncomplete, manifestName, m.Format, Format)
	}
	if len(m.IndexFiles) == 0 {
		return m, fmt.Errorf("%w: %s lists no index files", ErrIncomplete, manifestName)
	}
	for _, f := range m.IndexFiles {
		if !localName(f.Name) {
			return m, fmt.Errorf("%w: %s names index file %q outside the backup", ErrIncomplete, manifestName, f.Name)
		}
	}
	return m, nil
}

// sameContents checks what was received against the manifest that came
// with it.
func sameContents(sent, got Manifest) error {
	if sent.Format != Format {
		return fmt.Errorf("%w: format %q, want %q", ErrIncomplete, sent.Format, Format)
	}
	if sent.Blobs != got.Blobs || sent.BlobBytes != got.BlobBytes {
		return fmt.Errorf("%w: %d blobs (%d bytes) received, the manifest says %d (%d bytes)",
			ErrIncomplete, got.Blobs, got.BlobBytes, sent.Blobs, sent.BlobBytes)
	}
	byName := func(a, b File) int { return strings.Compare(a.Name, b.Name) }
	a, b := slices.SortedFunc(slices.Values(sent.IndexFiles), byName), slices.SortedFunc(slices.Values(got.IndexFiles), byName)
	if len(a) != len(b) {
		return fmt.Errorf("%w: %d index files received, the manifest says %d", ErrIncomplete, len(b), len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("%w: index file %s received as %+v, the manifest says %+v", ErrIncomplete, a[i].Name, b[i], a[i])
		}
	}
	if len(a) == 0 {
		return fmt.Errorf("%w: no index files", ErrIncomplete)
	}
	return nil
}

// writeManifest writes DIR/MANIFEST.json durably and atomically: the mark of
// a complete backup.
func writeManifest(dir string, m Manifest) error {
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	tmp := filepath.Join(dir, manifestName+".tmp")
	_ = os.Remove(tmp) // a leftover of an earlier attempt into this directory
	_, _, err = writeFile(tmp, strings.NewReader(string(body)+"\n"), int64(len(body))+1)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, manifestName))
	}
	if err == nil {
		err = dirstore.SyncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("backup: manifest: %w", err)
	}
	return nil
}

package backup

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
)

// Dir is a directory being filled with a backup.
type Dir struct {
	dir     string
	created bool // the directory did not exist before
}

// CreateDir prepares dir, which must be absent or empty (else an error
// wrapping ErrNotEmpty), to receive a backup.
func CreateDir(dir string) (*Dir, error) {
	created, err := emptyDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: into %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("backup: into %s: %w", dir, err)
	}
	return &Dir{dir: dir, created: created}, nil
}

// openBlobDir opens the blob directory of the backup in dir.
func openBlobDir(dir string) (*cas.Store, error) {
	backend, err := dirstore.Open(filepath.Join(dir, "blobs"), dirstore.Options{})
	if err != nil {
		return nil, err
	}
	return cas.New(backend, cas.Options{}), nil
}

// Receive reads a backup stream from r into the directory: each entry is
// checked (blobs against their names, everything against the stream's
// manifest), and MANIFEST.json is written last, once the rest is durable.
// On error what it wrote is removed (Discard). Receive is called once.
func (d *Dir) Receive(ctx context.Context, r io.Reader) (_ Manifest, err error) {
	defer func() {
		if err != nil {
			d.Discard()
		}
	}()
	blobs, err := openBlobDir(d.dir)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer blobs.Close()
	var (
		got       Manifest
		sent      *Manifest
		seenBlobs = map[cas.Hash]bool{}
	)
	tr := tar.NewReader(streamReader{r})
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.Is(err, ErrIncomplete) {
				err = fmt.Errorf("%w: %v", ErrIncomplete, err)
			}
			return got, fmt.Errorf("backup: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return got, err
		}
		if sent != nil {
			return got, fmt.Errorf("%w: entry %q after the manifest", ErrIncomplete, hdr.Name)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size < 0 {
			return got, fmt.Errorf("%w: entry %q is not a regular file", ErrIncomplete, hdr.Name)
		}
		body := streamReader{tr}
		switch name := hdr.Name; {
		case name == manifestName:
			if hdr.Size > maxManifest {
				return got, fmt.Errorf("%w: a manifest of %d bytes", ErrIncomplete, hdr.Size)
			}
			var m Manifest
			if err := json.NewDecoder(body).Decode(&m); err != nil {
				return got, fmt.Errorf("%w: the manifest does not parse: %v", ErrIncomplete, err)
			}
			sent = &m
		case strings.HasPrefix(name, indexPrefix):
			rel := strings.TrimPrefix(name, indexPrefix)
			if !localName(rel) {
				return got, fmt.Errorf("%w: index entry %q leaves the directory", ErrIncomplete, name)
			}
			sum, n, err := writeFile(filepath.Join(d.dir, "index", filepath.FromSlash(rel)), body, hdr.Size)
			if err == nil && n != hdr.Size {
				err = fmt.Errorf("%w: %d bytes of %d", ErrIncomplete, n, hdr.Size)
			}
			if err != nil {
				return got, fmt.Errorf("backup: %s: %w", name, err)
			}
			got.IndexFiles = append(got.IndexFiles, File{Name: rel, Size: hdr.Size, BLAKE3: sum.String()})
		case strings.HasPrefix(name, blobsPrefix):
			h, err := cas.ParseHash(strings.TrimPrefix(name, blobsPrefix))
			if err != nil || h.String() != strings.TrimPrefix(name, blobsPrefix) {
				return got, fmt.Errorf("%w: blob entry %q is not named by a lower-case hash", ErrIncomplete, name)
			}
			if seenBlobs[h] {
				return got, fmt.Errorf("%w: blob %s twice", ErrIncomplete, h)
			}
			seenBlobs[h] = true
			info, err := blobs.Put(ctx, body, cas.PutOptions{Expected: &h})
			if err == nil && info.Size != hdr.Size {
				err = fmt.Errorf("%w: %d bytes of %d", ErrIncomplete, info.Size, hdr.Size)
			}
			if err != nil {
				return got, fmt.Errorf("backup: blob %s: %w", h, err)
			}
			got.Blobs++
			got.BlobBytes += hdr.Size
		default:
			return got, fmt.Errorf("%w: unexpected entry %q", ErrIncomplete, name)
		}
	}
	if sent == nil {
		return got, fmt.Errorf("%w: the stream ended without its manifest", ErrIncomplete)
	}
	if err := sameContents(*sent, got); err != nil {
		return got, err
	}
	got.Format, got.CreatedAt = sent.Format, sent.CreatedAt
	// Each file is synced; their directories' entries now.
	if err := syncDirs(filepath.Join(d.dir, "index")); err != nil {
		return got, fmt.Errorf("backup: sync: %w", err)
	}
	if err := writeManifest(d.dir, got); err != nil {
		return got, err
	}
	return got, nil
}

// Discard removes what was written into the directory, and the directory
// when CreateDir created it (it was empty before). Receive discards on error
// by itself.
func (d *Dir) Discard() {
	if d.created {
		_ = os.RemoveAll(d.dir)
		return
	}
	for _, name := range []string{"index", "blobs", manifestName + ".tmp"} {
		_ = os.RemoveAll(filepath.Join(d.dir, name))
	}
}

// streamReader marks the errors of reading a backup stream: a stream that
// breaks off is an incomplete backup.
type streamReader struct{ r io.Reader }

func (s streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: the stream broke off: %v", ErrIncomplete, err)
	}
	return n, err
}

package backup

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
)

// Checkpointer is the capability of an index engine that can copy itself
// consistently while it serves (pebbleindex.Store).
type Checkpointer interface {
	// Checkpoint writes a consistent copy of the index into dir, which must
	// not exist.
	Checkpoint(ctx context.Context, dir string) error
}

// Options configure a Service.
type Options struct {
	// Checkpointer copies the index; nil means the deployment's index
	// cannot be backed up this way (PostgreSQL): Begin fails with
	// ErrUnsupported.
	Checkpointer Checkpointer
	// TempDir holds the checkpoint of the backup under way, on the index's
	// filesystem so that Pebble hard-links its tables. Only backups use it:
	// what is there when one begins was left by a process that died, and is
	// removed. Required with Checkpointer.
	TempDir string
	// Logger receives what a backup did; nil discards it.
	Logger *slog.Logger
}

// Service writes backup streams of one deployment. It is safe for
// concurrent use; one backup runs at a time (the others get ErrBusy). It
// does not own the index or the blob store.
type Service struct {
	idx   index.Store
	blobs *cas.Store
	opt   Options
	log   *slog.Logger
}

// New returns the backup service over idx (the deployment's index, whose
// sweep lock a backup holds) and blobs.
func New(idx index.Store, blobs *cas.Store, opt Options) *Service {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{idx: idx, blobs: blobs, opt: opt, log: log}
}

// Run is a backup whose checkpoint is taken: it holds the sweep lock until
// Close.
type Run struct {
	s      *Service
	unlock func()
	index  string // the checkpoint, under s.opt.TempDir
}

// Begin takes the sweep lock and a checkpoint of the index: ErrUnsupported
// on a PostgreSQL index, ErrBusy while a sweep or another backup runs. The
// caller must Close the Run.
func (s *Service) Begin(ctx context.Context) (_ *Run, err error) {
	if s.opt.Checkpointer == nil || s.opt.TempDir == "" {
		return nil, fmt.Errorf("%w: the index is in PostgreSQL: back up the database with pg_dump first, "+
			"then the bucket (or blob directory) with its own tools; see the README, \"Backup and restore\"", ErrUnsupported)
	}
	unlock, err := s.idx.TryLockGC(ctx)
	if errors.Is(err, index.ErrConflict) {
		return nil, fmt.Errorf("%w: try again when it has finished", ErrBusy)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: take the sweep lock: %w", err)
	}
	b := &Run{s: s, unlock: unlock, index: filepath.Join(s.opt.TempDir, "index")}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if err := os.RemoveAll(s.opt.TempDir); err != nil {
		return nil, fmt.Errorf("backup: remove a stale checkpoint: %w", err)
	}
	if err := os.MkdirAll(s.opt.TempDir, 0o755); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := s.opt.Checkpointer.Checkpoint(ctx, b.index); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return b, nil
}

// Close removes the checkpoint and lets the sweep lock go.
func (b *Run) Close() {
	if err := os.RemoveAll(b.s.opt.TempDir); err != nil {
		b.s.log.Warn("backup: could not remove the checkpoint", "dir", b.s.opt.TempDir, "err", err)
	}
	b.unlock()
}

// Write writes a backup stream of the deployment to w and returns its
// manifest (Begin, WriteTo, Close). After an error, w holds an incomplete
// stream (no manifest).
func (s *Service) Write(ctx context.Context, w io.Writer) (Manifest, error) {
	b, err := s.Begin(ctx)
	if err != nil {
		return Manifest{}, err
	}
	defer b.Close()
	start := time.Now()
	s.log.Info("backup started")
	m, err := b.WriteTo(ctx, w)
	if err != nil {
		return m, err
	}
	s.log.Info("backup streamed", "index_files", len(m.IndexFiles), "index_bytes", m.IndexBytes(),
		"blobs", m.Blobs, "blob_bytes", m.BlobBytes, "duration", time.Since(start).String())
	return m, nil
}

// WriteTo writes the stream: the checkpoint's files, the blobs it needs,
// the manifest. It is called once.
func (b *Run) WriteTo(ctx context.Context, w io.Writer) (Manifest, error) {
	m := Manifest{Format: Format, CreatedAt: time.Now().UTC()}
	tw := tar.NewWriter(w)
	now := m.CreatedAt

	// 1. The checkpoint's files, as Pebble wrote them: before the
	// checkpoint is opened below, which writes to it.
	err := filepath.WalkDir(b.index, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		rel, err := filepath.Rel(b.index, p)
		if err != nil {
			return err
		}
		f, err := copyFileToTar(ctx, tw, p, indexPrefix+filepath.ToSlash(rel), now)
		if err != nil {
			return err
		}
		m.IndexFiles = append(m.IndexFiles, f)
		return nil
	})
	if err != nil {
		return m, fmt.Errorf("backup: index files: %w", err)
	}

	// 2. The blobs the checkpoint needs, read (and verified) from the store.
	idx, err := pebbleindex.Open(b.index, pebbleindex.Options{})
	if err != nil {
		return m, fmt.Errorf("backup: open the checkpoint: %w", err)
	}
	defer idx.Close()
	err = neededBlobs(ctx, idx, func(h cas.Hash) error {
		n, err := copyBlobToTar(ctx, tw, b.s.blobs, h, now)
		if err != nil {
			return err
		}
		m.Blobs++
		m.BlobBytes += n
		return nil
	})
	if err != nil {
		return m, fmt.Errorf("backup: blobs: %w", err)
	}

	// 3. The manifest, last.
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("backup: manifest: %w", err)
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: manifestName, Size: int64(len(body)), Mode: 0o644, ModTime: now}
	if err := tw.WriteHeader(hdr); err != nil {
		return m, fmt.Errorf("backup: manifest: %w", err)
	}
	if _, err := tw.Write(body); err != nil {
		return m, fmt.Errorf("backup: manifest: %w", err)
	}
	if err := tw.Close(); err != nil {
		return m, fmt.Errorf("backup: end the stream: %w", err)
	}
	return m, nil
}

// copyFileToTar writes the file at p as the entry name and returns its size
// and hash.
func copyFileToTar(ctx context.Context, tw *tar.Writer, p, name string, now time.Time) (File, error) {
	if err := ctx.Err(); err != nil {
		return File{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return File{}, err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: 0o644, ModTime: now}
	if err := tw.WriteHeader(hdr); err != nil {
		return File{}, fmt.Errorf("%s: %w", name, err)
	}
	h := cas.NewHasher()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(f, st.Size()))
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", name, err)
	}
	if n != st.Size() {
		return File{}, fmt.Errorf("%s: %d bytes read of %d", name, n, st.Size())
	}
	return File{Name: strings.TrimPrefix(name, indexPrefix), Size: n, BLAKE3: h.Sum().String()}, nil
}

// copyBlobToTar writes blob h as "blobs/<h>" through the verifying store and
// returns its size. A missing blob, or bytes that no longer hash to h, fail.
func copyBlobToTar(ctx context.Context, tw *tar.Writer, blobs *cas.Store, h cas.Hash, now time.Time) (int64, error) {
	r, err := blobs.Open(ctx, h)
	if errors.Is(err, cas.ErrNotFound) {
		return 0, fmt.Errorf("blob %s, which the index needs, is missing from the blob store (run blockstore verify): %w", h, err)
	}
	if err != nil {
		return 0, err
	}
	defer r.Close()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: blobsPrefix + h.String(), Size: r.Size(), Mode: 0o444, ModTime: now}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, fmt.Errorf("blob %s: %w", h, err)
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return n, fmt.Errorf("blob %s: %w", h, err)
	}
	if n != r.Size() {
		return n, fmt.Errorf("blob %s: %d bytes read of %d", h, n, r.Size())
	}
	return n, nil
}

// neededBlobs calls fn once for each blob a backup of idx must hold: every
// live registry row but the inline ones (in the checkpoint already), then every referenced hash that is not one (only a
// damaged index has those). idx must not change meanwhile.
func neededBlobs(ctx context.Context, idx index.Store, fn func(cas.Hash) error) error {
	err := idx.Blobs(ctx, func(b index.Blob) error {
		if b.State != index.BlobLive || b.Inline {
			return nil // inline bytes are in the index checkpoint
		}
		return fn(b.Hash)
	})
	if err != nil {
		return err
	}
	return idx.ReferencedHashes(ctx, func(h cas.Hash) error {
		b, err := idx.Blob(ctx, h)
		switch {
		case err == nil && b.State == index.BlobLive:
			return nil // streamed above
		case err != nil && !errors.Is(err, index.ErrNotFound):
			return err
		}
		return fn(h)
	})
}

// WriteBackup is Write without the manifest: what the HTTP API needs.
func (s *Service) WriteBackup(ctx context.Context, w io.Writer) error {
	_, err := s.Write(ctx, w)
	return err
}

package app

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
)

// BackupFormat names the format of the backups of the embedded deployment:
// the stream of POST /api/v1/backup (App.Backup) and the directory that
// `blockstore backup DIR` writes and `blockstore restore DIR` reads.
//
// # What a backup holds
//
// A consistent point of the Pebble index (a checkpoint, taken while the
// server keeps serving) and every blob that point needs: each live row of its
// blob registry and each hash one of its versions references (the second
// set lies inside the first unless the index is damaged; both are taken).
// While a backup runs it holds the one-sweep lock (index.Store.TryLockGC), so
// no sweep can delete a blob that the checkpoint names before it is copied;
// a sweep asked for meanwhile is refused as if another sweep ran, and a
// backup asked for while a sweep runs is refused (409). Blobs written after
// the checkpoint are not in the backup, nor is anything that names them.
// Pending and deleting registry rows are kept in the index as they were but
// their bytes are not copied: a later sweep settles them as it would have.
//
// # The directory (blockstore backup DIR, blockstore restore DIR)
//
//	DIR/index/<file>        the checkpoint's files (Pebble MANIFEST, OPTIONS,
//	                        WAL, tables), as Pebble wrote them
//	DIR/blobs/<ab>/<hash>   each blob, named by its BLAKE3 hash (64 lower-case
//	                        hex digits) under the directory of its first two
//	DIR/MANIFEST.json       written last: what the backup holds
//
// MANIFEST.json is {"format": "blockstore-backup/1", "created_at",
// "index_files": [{"name", "size", "blake3"}], "blobs", "blob_bytes"}.
// It is written only once every other file has been verified (each blob
// against its name, each index file against the server's manifest) and
// synced, then renamed into place and its directory synced: a directory
// without it is an interrupted backup, and restore refuses it.
//
// # The stream (POST /api/v1/backup, App.Backup)
//
// A tar archive (POSIX, PAX headers where needed) of regular files in this
// order: "index/<file>" for each checkpoint file, "blobs/<hash>" for each
// blob, then "MANIFEST.json", the last entry, with the counts and hashes of
// what came before. A stream that ends without it, or whose entries differ
// from it, is an incomplete backup. The route is a POST, so that when the
// server requires tokens only the write token may take a backup (it holds the
// sweep lock while it runs). When the server fails halfway (a blob
// missing or corrupt, the client gone) it closes the connection without
// writing the manifest.
//
// # Restore
//
// Restore checks the manifest, copies the index files into a staging
// directory beside the target (verifying each against its size and BLAKE3),
// opens the restored index, and puts every blob it needs through a cas.Store
// with its expected hash (so each is verified again), into the staging
// directory's blob directory or into the configured bucket. It then syncs
// the staging directory and renames it onto the data directory, which must be
// absent or empty: an interrupted restore leaves the data directory as it
// was (and a staging directory named DATA.restoring-… to remove).
//
// PostgreSQL deployments are backed up with the database's and the bucket's
// own tools (see the README): Backup refuses them with ErrBackupUnsupported.
const BackupFormat = "blockstore-backup/1"

const (
	manifestName  = "MANIFEST.json"
	indexPrefix   = "index/"
	blobsPrefix   = "blobs/"
	maxManifest   = 64 << 20  // bytes of a manifest entry read at most
	streamBuffer  = 256 << 10 // bytes buffered between the tar writer and the connection
	backupTempDir = "backup"  // under DataDir: the checkpoint of the backup under way
)

// Errors of backups and restores; callers branch with errors.Is.
var (
	// ErrBackupUnsupported: the deployment's index is not the embedded one.
	ErrBackupUnsupported = errors.New("app: backup not supported by this deployment")
	// ErrBackupBusy: a sweep (or another backup) holds the sweep lock.
	ErrBackupBusy = errors.New("app: a sweep or another backup is running")
	// ErrBackupIncomplete: a backup stream or directory lacks its manifest or
	// does not match it.
	ErrBackupIncomplete = errors.New("app: backup incomplete or damaged")
	// ErrNotEmpty: the target directory of a backup or a restore holds files.
	ErrNotEmpty = errors.New("app: directory not empty")
)

// BackupManifest says what a backup holds (MANIFEST.json).
type BackupManifest struct {
	Format     string       `json:"format"`
	CreatedAt  time.Time    `json:"created_at"`
	IndexFiles []BackupFile `json:"index_files"`
	Blobs      int64        `json:"blobs"`
	BlobBytes  int64        `json:"blob_bytes"`
}

// BackupFile is one file of the index checkpoint.
type BackupFile struct {
	Name   string `json:"name"` // slash-separated, relative to index/
	Size   int64  `json:"size"`
	BLAKE3 string `json:"blake3"`
}

// IndexBytes is the size of the index files together.
func (m BackupManifest) IndexBytes() int64 {
	var n int64
	for _, f := range m.IndexFiles {
		n += f.Size
	}
	return n
}

// checkpointer is the optional capability of an index that can copy itself
// consistently while it serves (pebbleindex.Store).
type checkpointer interface {
	Checkpoint(ctx context.Context, dir string) error
}

// baseIndex is the index engine under the metrics wrapper.
func (a *App) baseIndex() index.Store {
	if m, ok := a.Index.(*meteredIndex); ok {
		return m.Store
	}
	return a.Index
}

// backupRun is a backup whose checkpoint is taken: it holds the sweep lock
// until close.
type backupRun struct {
	a      *App
	unlock func()
	tmp    string // removed by close
	index  string // the checkpoint, under tmp
}

// beginBackup takes the sweep lock and a checkpoint of the index. The caller
// must close the run.
func (a *App) beginBackup(ctx context.Context) (_ *backupRun, err error) {
	cp, ok := a.baseIndex().(checkpointer)
	if !ok {
		return nil, fmt.Errorf("%w: the index is in PostgreSQL: back up the database with pg_dump first, "+
			"then the bucket (or blob directory) with its own tools; see the README, \"Backup and restore\"", ErrBackupUnsupported)
	}
	unlock, err := a.Index.TryLockGC(ctx)
	if errors.Is(err, index.ErrConflict) {
		return nil, fmt.Errorf("%w: try again when it has finished", ErrBackupBusy)
	}
	if err != nil {
		return nil, fmt.Errorf("app: backup: take the sweep lock: %w", err)
	}
	b := &backupRun{a: a, unlock: unlock, tmp: filepath.Join(a.Config.DataDir, backupTempDir)}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	// Only a backup uses this directory, and we hold the sweep lock that
	// every backup takes: what is there was left by a process that died.
	if err := os.RemoveAll(b.tmp); err != nil {
		return nil, fmt.Errorf("app: backup: remove a stale checkpoint: %w", err)
	}
	if err := os.MkdirAll(b.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	// Beside the index, so that Pebble hard-links its tables.
	b.index = filepath.Join(b.tmp, "index")
	if err := cp.Checkpoint(ctx, b.index); err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	return b, nil
}

func (b *backupRun) close() {
	if err := os.RemoveAll(b.tmp); err != nil {
		b.a.Logger.Warn("backup: could not remove the checkpoint", "dir", b.tmp, "err", err)
	}
	b.unlock()
}

// Backup writes a backup stream (see the package's backup documentation) of
// the deployment to w and returns its manifest. While it runs no sweep can
// start; it fails with ErrBackupBusy while one runs and with
// ErrBackupUnsupported on a PostgreSQL index. After an error, w holds an
// incomplete stream (no manifest).
func (a *App) Backup(ctx context.Context, w io.Writer) (BackupManifest, error) {
	b, err := a.beginBackup(ctx)
	if err != nil {
		return BackupManifest{}, err
	}
	defer b.close()
	return b.stream(ctx, w)
}

// stream writes the tar: the checkpoint's files, the blobs it needs, the
// manifest.
func (b *backupRun) stream(ctx context.Context, w io.Writer) (BackupManifest, error) {
	m := BackupManifest{Format: BackupFormat, CreatedAt: time.Now().UTC()}
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
		return m, fmt.Errorf("app: backup: index files: %w", err)
	}

	// 2. The blobs the checkpoint needs, read (and verified) from the store.
	idx, err := pebbleindex.Open(b.index, pebbleindex.Options{})
	if err != nil {
		return m, fmt.Errorf("app: backup: open the checkpoint: %w", err)
	}
	defer idx.Close()
	err = neededBlobs(ctx, idx, func(h cas.Hash) error {
		n, err := copyBlobToTar(ctx, tw, b.a.Blobs, h, now)
		if err != nil {
			return err
		}
		m.Blobs++
		m.BlobBytes += n
		return nil
	})
	if err != nil {
		return m, fmt.Errorf("app: backup: blobs: %w", err)
	}

	// 3. The manifest, last.
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: manifestName, Size: int64(len(body)), Mode: 0o644, ModTime: now}
	if err := tw.WriteHeader(hdr); err != nil {
		return m, fmt.Errorf("app: backup: manifest: %w", err)
	}
	if _, err := tw.Write(body); err != nil {
		return m, fmt.Errorf("app: backup: manifest: %w", err)
	}
	if err := tw.Close(); err != nil {
		return m, fmt.Errorf("app: backup: end the stream: %w", err)
	}
	return m, nil
}

// copyFileToTar writes the file at p as the entry name and returns its size
// and hash.
func copyFileToTar(ctx context.Context, tw *tar.Writer, p, name string, now time.Time) (BackupFile, error) {
	if err := ctx.Err(); err != nil {
		return BackupFile{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return BackupFile{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return BackupFile{}, err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: 0o644, ModTime: now}
	if err := tw.WriteHeader(hdr); err != nil {
		return BackupFile{}, fmt.Errorf("%s: %w", name, err)
	}
	h := cas.NewHasher()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(f, st.Size()))
	if err != nil {
		return BackupFile{}, fmt.Errorf("%s: %w", name, err)
	}
	if n != st.Size() {
		return BackupFile{}, fmt.Errorf("%s: %d bytes read of %d", name, n, st.Size())
	}
	return BackupFile{Name: strings.TrimPrefix(name, indexPrefix), Size: n, BLAKE3: h.Sum().String()}, nil
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
// live registry row, then every referenced hash that is not one (only a
// damaged index has those). idx must not change meanwhile.
func neededBlobs(ctx context.Context, idx index.Store, fn func(cas.Hash) error) error {
	err := idx.Blobs(ctx, func(b index.Blob) error {
		if b.State != index.BlobLive {
			return nil
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

// serveBackup answers POST /api/v1/backup with the backup stream. Errors
// found before the stream starts get the API's JSON errors (400 for a
// PostgreSQL index, 409 while a sweep runs); after it started, the
// connection is closed without the manifest, and the log says why.
func (a *App) serveBackup(w http.ResponseWriter, r *http.Request) {
	b, err := a.beginBackup(r.Context())
	if err != nil {
		switch {
		case errors.Is(err, ErrBackupUnsupported):
			authError(w, r, http.StatusBadRequest, "bad_request", err.Error())
		case errors.Is(err, ErrBackupBusy):
			authError(w, r, http.StatusConflict, "conflict", err.Error())
		case errors.Is(err, index.ErrUnavailable):
			authError(w, r, http.StatusServiceUnavailable, "unavailable", "the index does not answer")
		default:
			a.Logger.Error("backup failed", "err", err)
			authError(w, r, http.StatusInternalServerError, "internal", "the backup could not start (see the server log)")
		}
		return
	}
	defer b.close()
	a.Logger.Info("backup started")
	start := time.Now()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, streamBuffer)
	m, err := b.stream(r.Context(), bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		a.Logger.Error("backup failed: closing the stream without its manifest", "err", err)
		abortResponse(w)
		return
	}
	a.Logger.Info("backup streamed", "index_files", len(m.IndexFiles), "index_bytes", m.IndexBytes(),
		"blobs", m.Blobs, "blob_bytes", m.BlobBytes, "duration", time.Since(start).String())
}

// abortResponse closes the connection under a response already under way,
// so that the client sees a broken stream rather than a clean end. Where the
// connection cannot be taken (HTTP/2), the response just ends; the missing
// manifest still tells.
func abortResponse(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// BackupDir is a directory being filled with a backup.
type BackupDir struct {
	dir     string
	created bool // the directory did not exist before
}

// CreateBackupDir prepares dir, which must be absent or empty (else an error
// wrapping ErrNotEmpty), to receive a backup.
func CreateBackupDir(dir string) (*BackupDir, error) {
	created, err := emptyDir(dir)
	if err != nil {
		return nil, fmt.Errorf("app: backup into %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("app: backup into %s: %w", dir, err)
	}
	return &BackupDir{dir: dir, created: created}, nil
}

// emptyDir says whether dir is absent (true) or an empty directory (false);
// anything else is an error wrapping ErrNotEmpty.
func emptyDir(dir string) (absent bool, err error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	if len(names) > 0 {
		return false, fmt.Errorf("%w: %s holds %s", ErrNotEmpty, dir, names[0])
	}
	return false, nil
}

// Receive reads a backup stream from r into the directory: each entry is
// checked (blobs against their names, everything against the stream's
// manifest), the files are synced, and MANIFEST.json is written last. On
// error what it wrote is removed (Discard). Receive is called once.
func (d *BackupDir) Receive(ctx context.Context, r io.Reader) (_ BackupManifest, err error) {
	defer func() {
		if err != nil {
			d.Discard()
		}
	}()
	var (
		got       BackupManifest
		sent      *BackupManifest
		seenBlobs = map[cas.Hash]bool{}
		buf       = make([]byte, 1<<20)
	)
	tr := tar.NewReader(streamReader{r})
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.Is(err, ErrBackupIncomplete) {
				err = fmt.Errorf("%w: %v", ErrBackupIncomplete, err)
			}
			return got, fmt.Errorf("app: backup: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return got, err
		}
		if sent != nil {
			return got, fmt.Errorf("%w: entry %q after the manifest", ErrBackupIncomplete, hdr.Name)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size < 0 {
			return got, fmt.Errorf("%w: entry %q is not a regular file", ErrBackupIncomplete, hdr.Name)
		}
		switch name := hdr.Name; {
		case name == manifestName:
			if hdr.Size > maxManifest {
				return got, fmt.Errorf("%w: a manifest of %d bytes", ErrBackupIncomplete, hdr.Size)
			}
			var m BackupManifest
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				return got, fmt.Errorf("%w: the manifest does not parse: %v", ErrBackupIncomplete, err)
			}
			sent = &m
		case strings.HasPrefix(name, indexPrefix):
			rel := strings.TrimPrefix(name, indexPrefix)
			if !filepath.IsLocal(filepath.FromSlash(rel)) || path.Clean(rel) != rel {
				return got, fmt.Errorf("%w: index entry %q leaves the directory", ErrBackupIncomplete, name)
			}
			sum, n, err := writeNewFile(filepath.Join(d.dir, "index", filepath.FromSlash(rel)), streamReader{tr}, hdr.Size, buf)
			if err == nil && n != hdr.Size {
				err = fmt.Errorf("%w: %d bytes of %d", ErrBackupIncomplete, n, hdr.Size)
			}
			if err != nil {
				return got, fmt.Errorf("app: backup: %s: %w", name, err)
			}
			got.IndexFiles = append(got.IndexFiles, BackupFile{Name: rel, Size: hdr.Size, BLAKE3: sum.String()})
		case strings.HasPrefix(name, blobsPrefix):
			h, err := cas.ParseHash(strings.TrimPrefix(name, blobsPrefix))
			if err != nil || h.String() != strings.TrimPrefix(name, blobsPrefix) {
				return got, fmt.Errorf("%w: blob entry %q is not named by a lower-case hash", ErrBackupIncomplete, name)
			}
			if seenBlobs[h] {
				return got, fmt.Errorf("%w: blob %s twice", ErrBackupIncomplete, h)
			}
			seenBlobs[h] = true
			sum, n, err := writeNewFile(blobPath(d.dir, h), streamReader{tr}, hdr.Size, buf)
			if err == nil && n != hdr.Size {
				err = fmt.Errorf("%w: %d bytes of %d", ErrBackupIncomplete, n, hdr.Size)
			}
			if err != nil {
				return got, fmt.Errorf("app: backup: blob %s: %w", h, err)
			}
			if sum != h {
				return got, fmt.Errorf("app: backup: blob %s: %w", h, &cas.MismatchError{Want: h, Got: sum})
			}
			got.Blobs++
			got.BlobBytes += hdr.Size
		default:
			return got, fmt.Errorf("%w: unexpected entry %q", ErrBackupIncomplete, name)
		}
	}
	if sent == nil {
		return got, fmt.Errorf("%w: the stream ended without its manifest", ErrBackupIncomplete)
	}
	if err := sameContents(*sent, got); err != nil {
		return got, err
	}
	got.Format, got.CreatedAt = sent.Format, sent.CreatedAt
	for _, sub := range []string{"index", "blobs"} {
		if err := syncTree(filepath.Join(d.dir, sub)); err != nil {
			return got, fmt.Errorf("app: backup: sync: %w", err)
		}
	}
	if err := writeManifest(d.dir, got); err != nil {
		return got, err
	}
	return got, nil
}

// Discard removes what was written into the directory, and the directory
// when CreateBackupDir created it (it was empty before). Receive discards
// on error by itself.
func (d *BackupDir) Discard() {
	if d.created {
		_ = os.RemoveAll(d.dir)
		return
	}
	for _, name := range []string{"index", "blobs", manifestName + ".tmp"} {
		_ = os.RemoveAll(filepath.Join(d.dir, name))
	}
}

// sameContents checks what was received against the manifest that came
// with it.
func sameContents(sent, got BackupManifest) error {
	if sent.Format != BackupFormat {
		return fmt.Errorf("%w: format %q, want %q", ErrBackupIncomplete, sent.Format, BackupFormat)
	}
	if sent.Blobs != got.Blobs || sent.BlobBytes != got.BlobBytes {
		return fmt.Errorf("%w: %d blobs (%d bytes) received, the manifest says %d (%d bytes)",
			ErrBackupIncomplete, got.Blobs, got.BlobBytes, sent.Blobs, sent.BlobBytes)
	}
	a, b := sortedFiles(sent.IndexFiles), sortedFiles(got.IndexFiles)
	if len(a) != len(b) {
		return fmt.Errorf("%w: %d index files received, the manifest says %d", ErrBackupIncomplete, len(b), len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("%w: index file %s received as %+v, the manifest says %+v", ErrBackupIncomplete, a[i].Name, b[i], a[i])
		}
	}
	if len(a) == 0 {
		return fmt.Errorf("%w: no index files", ErrBackupIncomplete)
	}
	return nil
}

func sortedFiles(fs []BackupFile) []BackupFile {
	out := append([]BackupFile(nil), fs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// blobPath is where a backup directory keeps blob h.
func blobPath(dir string, h cas.Hash) string {
	x := h.String()
	return filepath.Join(dir, "blobs", x[:2], x)
}

// writeNewFile creates p (which must not exist) with the bytes of r, at most
// limit of them, and returns their hash and count. It does not sync: syncTree
// does, once for many files.
func writeNewFile(p string, r io.Reader, limit int64, buf []byte) (cas.Hash, int64, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return cas.Hash{}, 0, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return cas.Hash{}, 0, err
	}
	h := cas.NewHasher()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, limit), buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cas.Hash{}, n, err
	}
	return h.Sum(), n, nil
}

// streamReader marks the errors of reading a backup stream: a stream that
// breaks off is an incomplete backup.
type streamReader struct{ r io.Reader }

func (s streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: the stream broke off: %v", ErrBackupIncomplete, err)
	}
	return n, err
}

// syncTree fsyncs every file and directory under root (and root), so that
// many files are written first and synced together: the kernel has written
// most of them back by then.
func syncTree(root string) error {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return syncPath(p)
	})
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

// writeManifest writes DIR/MANIFEST.json durably and atomically: the mark of
// a complete backup.
func writeManifest(dir string, m BackupManifest) error {
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, manifestName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("app: backup: manifest: %w", err)
	}
	_, err = f.Write(append(body, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, manifestName))
	}
	if err == nil {
		err = syncPath(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("app: backup: manifest: %w", err)
	}
	return nil
}

// ReadBackupManifest reads the manifest of the backup in dir: an error
// wrapping ErrBackupIncomplete when there is none (an interrupted backup) or
// it does not parse. It does not read the files; Restore checks them.
func ReadBackupManifest(dir string) (BackupManifest, error) {
	var m BackupManifest
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return m, fmt.Errorf("app: backup %s: %w", dir, serr)
		}
		return m, fmt.Errorf("%w: %s has no %s (the backup did not finish)", ErrBackupIncomplete, dir, manifestName)
	}
	if err != nil {
		return m, fmt.Errorf("app: backup %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrBackupIncomplete, manifestName, err)
	}
	if m.Format != BackupFormat {
		return m, fmt.Errorf("%w: %s has format %q, want %q", ErrBackupIncomplete, manifestName, m.Format, BackupFormat)
	}
	if len(m.IndexFiles) == 0 {
		return m, fmt.Errorf("%w: %s lists no index files", ErrBackupIncomplete, manifestName)
	}
	for _, f := range m.IndexFiles {
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) || path.Clean(f.Name) != f.Name {
			return m, fmt.Errorf("%w: %s names index file %q outside the backup", ErrBackupIncomplete, manifestName, f.Name)
		}
	}
	return m, nil
}

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Jobs is how many blobs are restored at once; 0 means 4.
	Jobs int
}

// RestoreReport says what Restore brought back.
type RestoreReport struct {
	IndexFiles int   `json:"index_files"`
	IndexBytes int64 `json:"index_bytes"`
	Blobs      int64 `json:"blobs"`
	BlobBytes  int64 `json:"blob_bytes"`
}

// Restore brings the backup in dir back into cfg's deployment: the index into
// cfg.DataDir/index (which must be absent or empty: else an error wrapping
// ErrNotEmpty) and the blobs into cfg.DataDir/blobs, or into cfg's bucket
// when cfg.S3.Endpoint is set. cfg.DatabaseURL must be empty. A backup
// without its manifest, or whose files differ from it, is an error wrapping
// ErrBackupIncomplete, and the data directory is left as it was.
func Restore(ctx context.Context, dir string, cfg Config, opt RestoreOptions) (rep RestoreReport, err error) {
	if cfg.DatabaseURL != "" {
		return rep, fmt.Errorf("app: restore: the backup holds an embedded index; a PostgreSQL index is restored with pg_restore (see the README)")
	}
	if cfg.DataDir == "" {
		return rep, errors.New("app: restore: no data directory")
	}
	if opt.Jobs <= 0 {
		opt.Jobs = 4
	}
	m, err := ReadBackupManifest(dir)
	if err != nil {
		return rep, err
	}
	target, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return rep, fmt.Errorf("app: restore: %w", err)
	}
	if _, err := emptyDir(target); err != nil {
		return rep, fmt.Errorf("app: restore into %s: %w", target, err)
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return rep, fmt.Errorf("app: restore: %w", err)
	}
	staging, err := os.MkdirTemp(parent, filepath.Base(target)+".restoring-")
	if err != nil {
		return rep, fmt.Errorf("app: restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(staging)
		}
	}()

	// 1. The index files, each checked against the manifest.
	buf := make([]byte, 1<<20)
	for _, f := range m.IndexFiles {
		if err := copyIndexFile(dir, staging, f, buf); err != nil {
			return rep, err
		}
		rep.IndexFiles++
		rep.IndexBytes += f.Size
	}
	if err := syncTree(filepath.Join(staging, "index")); err != nil {
		return rep, fmt.Errorf("app: restore: sync the index: %w", err)
	}

	// 2. The blobs the restored index needs, verified on the way in.
	if rep.Blobs, rep.BlobBytes, err = restoreBlobs(ctx, dir, staging, cfg, opt.Jobs); err != nil {
		return rep, err
	}
	if rep.Blobs != m.Blobs || rep.BlobBytes != m.BlobBytes {
		return rep, fmt.Errorf("%w: the index needs %d blobs (%d bytes), the manifest lists %d (%d bytes)",
			ErrBackupIncomplete, rep.Blobs, rep.BlobBytes, m.Blobs, m.BlobBytes)
	}

	// 3. Into place at once.
	if err := syncPath(staging); err != nil {
		return rep, fmt.Errorf("app: restore: %w", err)
	}
	// An empty target goes first (rmdir refuses one that has filled up
	// meanwhile); os.Rename does not replace directories.
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("app: restore into %s: %w", target, err)
	}
	if err := os.Rename(staging, target); err != nil {
		return rep, fmt.Errorf("app: restore: move the restored deployment into %s (it must be absent or empty): %w", target, err)
	}
	done = true
	if err := syncPath(parent); err != nil {
		return rep, fmt.Errorf("app: restore: %w", err)
	}
	return rep, nil
}

// copyIndexFile copies one index file of the backup in dir into staging,
// checking its size and hash.
func copyIndexFile(dir, staging string, f BackupFile, buf []byte) error {
	src, err := os.Open(filepath.Join(dir, "index", filepath.FromSlash(f.Name)))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: index file %s is missing", ErrBackupIncomplete, f.Name)
	}
	if err != nil {
		return fmt.Errorf("app: restore: %w", err)
	}
	defer src.Close()
	// One byte more than the manifest says, to see a file that grew.
	dst := filepath.Join(staging, "index", filepath.FromSlash(f.Name))
	sum, n, err := writeNewFile(dst, src, f.Size+1, buf)
	if err != nil {
		return fmt.Errorf("app: restore: index file %s: %w", f.Name, err)
	}
	if n != f.Size || sum.String() != f.BLAKE3 {
		return fmt.Errorf("%w: index file %s (%d bytes, %s) differs from the manifest (%d bytes, %s)",
			ErrBackupIncomplete, f.Name, n, sum, f.Size, f.BLAKE3)
	}
	return nil
}

// restoreBlobs opens the restored index in staging and puts every blob it
// needs from the backup in dir into cfg's blob store.
func restoreBlobs(ctx context.Context, dir, staging string, cfg Config, jobs int) (blobs, bytes int64, err error) {
	idx, err := pebbleindex.Open(filepath.Join(staging, "index"), pebbleindex.Options{})
	if err != nil {
		return 0, 0, fmt.Errorf("app: restore: open the restored index: %w", err)
	}
	defer idx.Close()
	var backend cas.Backend
	local := cfg.S3.Endpoint == ""
	if local {
		// Synced once at the end (syncTree), not blob by blob.
		backend, err = dirstore.Open(filepath.Join(staging, "blobs"), dirstore.Options{NoSync: true})
	} else {
		backend, err = s3store.Open(ctx, cfg.S3)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("app: restore: open the blob store: %w", err)
	}
	store := cas.New(backend, cas.Options{})
	defer store.Close()

	var n, total atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan cas.Hash)
	for range jobs {
		g.Go(func() error {
			for h := range work {
				size, err := restoreBlob(gctx, store, dir, h)
				if err != nil {
					return err
				}
				n.Add(1)
				total.Add(size)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		return neededBlobs(gctx, idx, func(h cas.Hash) error {
			select {
			case work <- h:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	if local {
		if err := syncTree(filepath.Join(staging, "blobs")); err != nil {
			return 0, 0, fmt.Errorf("app: restore: sync the blobs: %w", err)
		}
	}
	return n.Load(), total.Load(), nil
}

func restoreBlob(ctx context.Context, store *cas.Store, dir string, h cas.Hash) (int64, error) {
	f, err := os.Open(blobPath(dir, h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: blob %s, which the index needs, is not in the backup", ErrBackupIncomplete, h)
	}
	if err != nil {
		return 0, fmt.Errorf("app: restore: blob %s: %w", h, err)
	}
	defer f.Close()
	info, err := store.Put(ctx, f, cas.PutOptions{Expected: &h})
	if errors.Is(err, cas.ErrHashMismatch) {
		return 0, fmt.Errorf("%w: blob %s in the backup is corrupt: %v", ErrBackupIncomplete, h, err)
	}
	if err != nil {
		return 0, fmt.Errorf("app: restore: %w", err)
	}
	return info.Size, nil
}

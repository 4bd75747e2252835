package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/blockstore/blockstore/cas"
)

const (
	// DefaultPartSize is the part size when Config.PartSize is 0.
	DefaultPartSize = 16 << 20
	// MinPartSize and MaxPartSize bound Config.PartSize (S3's limits).
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
	// maxParts is S3's limit of parts in a multipart upload.
	maxParts = 10000
	// SmallBlobSize is the size up to which an upload is held in memory and
	// sent in one PUT at Commit, rather than streamed as a multipart upload.
	SmallBlobSize = 4 << 20
	// maxCopySize is the largest object CopyObject copies in one request;
	// larger ones need a multipart copy (ComposeObject).
	maxCopySize = 5 << 30

	contentType = "application/octet-stream"

	blobsDir = "blobs/"
	tmpDir   = "tmp/"

	// maxDeleteKeys is S3's limit of keys in one DeleteObjects request.
	maxDeleteKeys = 1000
)

// Config says where the blobs live and how to reach them.
type Config struct {
	// Endpoint is host[:port] (s3.amazonaws.com, 127.0.0.1:9000) or a URL
	// whose scheme (http, https) decides Insecure.
	Endpoint string
	Bucket   string
	// Prefix is prepended to every key; a "/" is added when it lacks one.
	Prefix string
	// AccessKey and SecretKey are static credentials. When AccessKey is
	// empty, credentials come from the environment (AWS_ACCESS_KEY_ID…,
	// MINIO_ROOT_USER…), ~/.aws/credentials, or the instance's IAM role.
	AccessKey string
	SecretKey string
	Region    string
	// Insecure uses plain http.
	Insecure bool
	// PartSize is the multipart part size: the memory one upload buffers,
	// and 1/10,000 of the largest blob. 0 means DefaultPartSize (16 MiB).
	PartSize uint64
	// CreateBucket creates the bucket when it does not exist.
	CreateBucket bool
	// Timeout bounds each wait on the bucket: a request that sends no bulk
	// bytes (stat, delete, a small blob's PUT, the first answer of a read),
	// each read of an object, each hand-off of bytes to a streaming upload
	// (the bucket must take a part within it), and a server-side copy (plus
	// a second per 20 MiB). A bucket, or a network, that stops answering
	// then fails the call with a *TimeoutError instead of hanging it.
	// 0 means DefaultTimeout (30s).
	Timeout time.Duration
}

// Store is a cas.Backend over an S3 bucket. It is safe for concurrent use.
type Store struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string
	partSize uint64
	timeout  time.Duration

	// copyLimit is the size above which Commit copies with ComposeObject
	// rather than CopyObject, and composePartSize that copy's part size
	// (0: minio-go's default, 5 GiB). Tests lower them.
	copyLimit       int64
	composePartSize uint64
	// live are the keys this process is writing (see liveKeys).
	live liveKeys

	// beforeMove, when set, runs in Commit between the end of a streamed
	// upload to a temporary key and its copy to the final key (tests).
	beforeMove func()
}

var (
	_ cas.Backend      = (*Store)(nil)
	_ cas.TempCleaner  = (*Store)(nil)
	_ cas.BatchDeleter = (*Store)(nil)
	_ cas.Pinger       = (*Store)(nil)
)

// Open connects to the bucket (creating it when cfg.CreateBucket says so)
// and returns a Store over it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	host, secure, err := parseEndpoint(cfg.Endpoint, cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3store: no bucket given")
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize || partSize > MaxPartSize {
		return nil, fmt.Errorf("s3store: part size %d is outside [%d, %d]", partSize, MinPartSize, MaxPartSize)
	}
	prefix := strings.TrimLeft(cfg.Prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}},
		})
	}
	client, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region})
	if err != nil {
		return nil, fmt.Errorf("s3store: client for %s: %w", host, err)
	}
	s := &Store{
		client:    client,
		core:      minio.Core{Client: client},
		bucket:    cfg.Bucket,
		prefix:    prefix,
		partSize:  partSize,
		timeout:   cfg.Timeout,
		copyLimit: maxCopySize,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	exists, err := bucketExists(ctx, client, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3store: bucket %q at %s: %w", cfg.Bucket, host, translate(err))
	}
	if !exists {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3store: bucket %q at %s does not exist", cfg.Bucket, host)
		}
		err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return nil, fmt.Errorf("s3store: create bucket %q at %s: %w", cfg.Bucket, host, translate(err))
		}
	}
	return s, nil
}

// startupWait bounds how long Open waits for a MinIO that is still starting.
const startupWait = 30 * time.Second

// bucketExists asks whether the bucket exists, waiting (up to startupWait,
// within ctx) while a MinIO server answers that it is not initialized yet:
// its readiness endpoint says 200 before it serves S3 requests, and a
// deployment may start both at once.
func bucketExists(ctx context.Context, client *minio.Client, bucket string) (bool, error) {
	deadline := time.Now().Add(startupWait)
	for {
		exists, err := client.BucketExists(ctx, bucket)
		if err == nil || minio.ToErrorResponse(err).Code != "XMinioServerNotInitialized" || time.Now().After(deadline) {
			return exists, err
		}
		select {
		case <-ctx.Done():
			return false, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// parseEndpoint accepts host[:port] or an http(s) URL without a path.
func parseEndpoint(ep string, insecure bool) (host string, secure bool, err error) {
	if ep == "" {
		return "", false, errors.New("no endpoint given")
	}
	if !strings.Contains(ep, "://") {
		return ep, !insecure, nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", false, fmt.Errorf("endpoint: %w", err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		return "", false, fmt.Errorf("endpoint %q: want host[:port] or scheme://host[:port]", u.Redacted())
	}
	switch u.Scheme {
	case "http":
		return u.Host, false, nil
	case "https":
		return u.Host, true, nil
	}
	return "", false, fmt.Errorf("endpoint %q: scheme must be http or https", u.Redacted())
}

// Bucket and Prefix say where the store's keys are.
func (s *Store) Bucket() string { return s.bucket }
func (s *Store) Prefix() string { return s.prefix }

// Key returns the object key of blob h.
func (s *Store) Key(h cas.Hash) string { return s.prefix + blobsDir + h.String() }

func (s *Store) tmpKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return s.prefix + tmpDir + hex.EncodeToString(b[:])
}

// translate turns minio-go's error responses into cas sentinels: this is
// the one place that does. Other errors keep their S3 code for the reader.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return err
	}
	switch resp.Code {
	case "NoSuchKey", "NoSuchObject", "NoSuchVersion":
		return cas.ErrNotFound
	case "EntityTooLarge":
		return fmt.Errorf("%w: %w", cas.ErrTooLarge, err)
	}
	if resp.Code == "" {
		return fmt.Errorf("s3 status %d: %w", resp.StatusCode, err)
	}
	return fmt.Errorf("s3 %s: %w", resp.Code, err)
}

// Stat implements cas.Backend.
func (s *Store) Stat(ctx context.Context, h cas.Hash) (cas.Info, error) {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	st, err := s.client.StatObject(ctx, s.bucket, s.Key(h), minio.StatObjectOptions{})
	if err != nil {
		return cas.Info{}, s.late(ctx, translate(err))
	}
	return cas.Info{Hash: h, Size: st.Size, ModTime: st.LastModified}, nil
}

// Open implements cas.Backend. The Reader is minio-go's Object: Read
// streams one GET; Seek and ReadAt issue ranged GETs. The first answer and
// each read are bounded by the timeout.
func (s *Store) Open(ctx context.Context, h cas.Hash) (cas.Reader, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	cut := func() { cancel(errNoAnswer) }
	var obj *minio.Object
	var st minio.ObjectInfo
	var err error
	guard(s.timeout, cut, func() {
		obj, err = s.client.GetObject(ctx, s.bucket, s.Key(h), minio.GetObjectOptions{})
		if err == nil {
			if st, err = obj.Stat(); err != nil {
				obj.Close()
			}
		}
	})
	if err != nil {
		err = s.late(ctx, translate(err))
		cancel(nil)
		return nil, err
	}
	return &objectReader{s: s, obj: obj, size: st.Size, ctx: ctx, cancel: cancel, cut: cut}, nil
}

type objectReader struct {
	s      *Store
	obj    *minio.Object
	size   int64
	ctx    context.Context // the object's requests'; cut when a read stalls
	cancel context.CancelCauseFunc
	cut    func()
}

func (r *objectReader) Read(p []byte) (n int, err error) {
	guard(r.s.timeout, r.cut, func() { n, err = r.obj.Read(p) })
	return n, r.s.late(r.ctx, translateRead(err))
}

func (r *objectReader) ReadAt(p []byte, off int64) (n int, err error) {
	guard(r.s.timeout, r.cut, func() { n, err = r.obj.ReadAt(p, off) })
	return n, r.s.late(r.ctx, translateRead(err))
}

func (r *objectReader) Seek(off int64, whence int) (int64, error) { return r.obj.Seek(off, whence) }
func (r *objectReader) Size() int64                               { return r.size }

func (r *objectReader) Close() error {
	err := r.obj.Close()
	r.cancel(nil)
	return err
}

func translateRead(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return translate(err)
}

// Create implements cas.Backend: see the package documentation for the
// ways an upload goes. Nothing is sent until the bytes outgrow SmallBlobSize.
func (s *Store) Create(ctx context.Context, known *cas.Hash) (cas.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &writer{s: s, ctx: ctx, known: known != nil, max: int64(s.partSize) * maxParts}
	if known != nil {
		w.key = s.Key(*known)
	} else {
		w.key = s.tmpKey()
	}
	s.live.add(w.key)
	return w, nil
}

// writer is one upload: bytes held in memory while the blob is small, then a
// PutObject fed through a pipe.
type writer struct {
	s     *Store
	ctx   context.Context // Create's: it bounds the whole upload
	key   string          // the final key (known hash) or a temp key
	known bool
	max   int64 // partSize × maxParts
	n     int64
	small []byte // the bytes so far, until the upload streams
	ended bool   // committed or cancelled

	// Set when the upload streams (startStream).
	pw     *io.PipeWriter
	putCtx context.Context
	cancel context.CancelFunc
	cut    func()        // cancel, saying the bucket did not answer in time
	done   chan struct{} // closed when PutObject has returned

	mu     sync.Mutex
	commit bool // Commit closed the pipe: PutObject may complete

	// Set by the PutObject goroutine before done is closed.
	info minio.UploadInfo
	err  error
}

func (w *writer) streaming() bool { return w.pw != nil }

func (w *writer) committing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.commit
}

// startStream starts the multipart PutObject and feeds it what was held.
func (w *writer) startStream() error {
	putCtx, cancel := context.WithCancelCause(w.ctx)
	pr, pw := io.Pipe()
	w.pw, w.putCtx, w.done = pw, putCtx, make(chan struct{})
	w.cancel = func() { cancel(nil) }
	w.cut = func() { cancel(errNoAnswer) }
	// minio-go blocks reading the pipe, not watching ctx: end the read too.
	stop := context.AfterFunc(putCtx, func() { pr.CloseWithError(putCtx.Err()) })
	go func() {
		defer close(w.done)
		defer stop()
		info, err := w.s.client.PutObject(putCtx, w.s.bucket, w.key, pr, -1, minio.PutObjectOptions{
			PartSize:    w.s.partSize,
			ContentType: contentType,
		})
		if err == nil && !w.committing() {
			// Unreachable while minio-go needs the pipe's EOF to complete;
			// refuse rather than keep a blob that was not committed.
			err = errors.New("upload completed before Commit")
			w.s.removeDetached(w.key)
		}
		// Unblock a writer still in pw.Write.
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.Close()
		}
		w.info, w.err = info, err
	}()
	held := w.small
	w.small = nil
	if len(held) == 0 {
		return nil
	}
	var err error
	guard(w.s.timeout, w.cut, func() { _, err = pw.Write(held) })
	if err != nil {
		return fmt.Errorf("s3store: upload %s: %w", w.key, w.s.late(putCtx, translate(err)))
	}
	return nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.ended {
		return 0, errors.New("s3store: write after the upload ended")
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.n+int64(len(p)) > w.max {
		return 0, fmt.Errorf("s3store: a blob has at most %d parts of %d bytes (raise the part size): %w",
			maxParts, w.s.partSize, cas.ErrTooLarge)
	}
	if !w.streaming() {
		if w.n+int64(len(p)) <= SmallBlobSize {
			w.small = append(w.small, p...)
			w.n += int64(len(p))
			return len(p), nil
		}
		if err := w.startStream(); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	guard(w.s.timeout, w.cut, func() { n, err = w.pw.Write(p) })
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("s3store: upload %s: %w", w.key, w.s.late(w.putCtx, translate(err)))
	}
	return n, nil
}

// Commit sends a small blob in one PUT to its final key; for a streamed one
// it completes the multipart upload (the pipe's EOF) and, for a temp key,
// copies it to the final key and deletes it.
func (w *writer) Commit(ctx context.Context, h cas.Hash, size int64) error {
	if w.ended {
		return errors.New("s3store: commit after the upload ended")
	}
	w.ended = true
	// The key stays live until the temporary object is copied and removed.
	defer w.s.live.drop(w.key)
	final := w.s.Key(h)
	if !w.streaming() {
		held := w.small
		w.small = nil
		if err := w.ctx.Err(); err != nil {
			return err
		}
		pctx, cancel := w.s.bounded(ctx, 0)
		defer cancel()
		_, err := w.s.client.PutObject(pctx, w.s.bucket, final, bytes.NewReader(held), int64(len(held)),
			minio.PutObjectOptions{ContentType: contentType})
		if err != nil {
			return fmt.Errorf("s3store: put %s: %w", final, w.s.late(pctx, translate(err)))
		}
		return nil
	}
	// Cancelling the commit's context stops the upload too.
	stop := context.AfterFunc(ctx, w.cancel)
	defer stop()
	defer w.cancel()

	w.mu.Lock()
	w.commit = true
	w.mu.Unlock()
	_ = w.pw.Close()
	guard(w.s.timeout, w.cut, func() { <-w.done })
	if w.err != nil {
		return fmt.Errorf("s3store: upload %s: %w", w.key, w.s.late(w.putCtx, translate(w.err)))
	}
	if w.info.Size != size {
		// Not reachable when minio-go works; never leave wrong bytes behind.
		w.s.removeDetached(w.key)
		return fmt.Errorf("s3store: upload %s: stored %d bytes, want %d", w.key, w.info.Size, size)
	}
	if w.known {
		return nil
	}
	if w.s.beforeMove != nil {
		w.s.beforeMove()
	}
	err := w.s.moveTemp(ctx, w.key, final, size)
	w.s.removeDetached(w.key)
	return err
}

// Cancel drops the held bytes, or aborts the multipart upload (minio-go
// does when its read of the pipe fails) and waits until it has.
func (w *writer) Cancel() error {
	if w.ended {
		return nil
	}
	w.ended = true
	defer w.s.live.drop(w.key)
	w.small = nil
	if w.streaming() {
		w.pw.CloseWithError(errors.New("s3store: upload cancelled"))
		w.cancel()
		<-w.done
	}
	return nil
}

// moveTemp copies the object tmp to final by a server-side copy, unless
// final already holds the blob.
func (s *Store) moveTemp(ctx context.Context, tmp, final string, size int64) error {
	ctx, cancel := s.bounded(ctx, time.Duration(size/copyRate)*time.Second)
	defer cancel()
	st, err := s.client.StatObject(ctx, s.bucket, final, minio.StatObjectOptions{})
	if err == nil && st.Size == size {
		return nil // stored by an earlier put of the same bytes
	}
	if err != nil && !errors.Is(translate(err), cas.ErrNotFound) {
		return fmt.Errorf("s3store: stat %s: %w", final, s.late(ctx, translate(err)))
	}
	dst := minio.CopyDestOptions{Bucket: s.bucket, Object: final}
	src := minio.CopySrcOptions{Bucket: s.bucket, Object: tmp}
	if size <= s.copyLimit {
		_, err = s.client.CopyObject(ctx, dst, src)
	} else {
		dst.PartSize = s.composePartSize
		dst.NumThreads = 4
		_, err = s.client.ComposeObject(ctx, dst, src)
	}
	if err != nil {
		return fmt.Errorf("s3store: copy %s to %s: %w", tmp, final, s.late(ctx, translate(err)))
	}
	return nil
}

// removeDetached deletes key even when the caller's context has ended,
// within the timeout like every delete.
func (s *Store) removeDetached(key string) {
	ctx, cancel := s.bounded(context.Background(), 0)
	defer cancel()
	_ = s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
}

// Delete implements cas.Backend. S3 deletes absent keys without complaint,
// so Delete checks first. The stat and the delete together take at most
// Config.Timeout: the garbage collector counts on that bound as the longest
// time one blob-store delete may take, after which it fails with a
// *TimeoutError.
func (s *Store) Delete(ctx context.Context, h cas.Hash) error {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	key := s.Key(h)
	if _, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err != nil {
		return s.late(ctx, translate(err))
	}
	return s.late(ctx, translate(s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})))
}

// DeleteMany implements cas.BatchDeleter with DeleteObjects requests (1,000
// keys each). Absent blobs are not an error. Each request of up to 1,000
// keys takes at most Config.Timeout (the bound the garbage collector counts
// on; a call of more keys is split and each part bounded alike).
func (s *Store) DeleteMany(ctx context.Context, hs []cas.Hash) error {
	for len(hs) > 0 {
		n := min(len(hs), maxDeleteKeys)
		if err := s.deleteBatch(ctx, hs[:n]); err != nil {
			return err
		}
		hs = hs[n:]
	}
	return nil
}

// deleteBatch is one DeleteObjects request, bounded by the timeout.
func (s *Store) deleteBatch(ctx context.Context, hs []cas.Hash) error {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	objects := make(chan minio.ObjectInfo)
	go func() {
		defer close(objects)
		for _, h := range hs {
			select {
			case objects <- minio.ObjectInfo{Key: s.Key(h)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var first error
	for e := range s.client.RemoveObjects(ctx, s.bucket, objects, minio.RemoveObjectsOptions{}) {
		if e.Err == nil || errors.Is(translate(e.Err), cas.ErrNotFound) || first != nil {
			continue
		}
		first = fmt.Errorf("s3store: delete %s: %w", e.ObjectName, s.late(ctx, translate(e.Err)))
	}
	if first == nil && ctx.Err() != nil {
		first = s.late(ctx, ctx.Err())
	}
	return first
}

// Walk implements cas.Backend: the keys under <prefix>blobs/, in key order.
func (s *Store) Walk(ctx context.Context, fn func(cas.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir := s.prefix + blobsDir
	objects := s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true})
	defer func() {
		cancel()
		for range objects { // let the lister end
		}
	}()
	for obj := range objects {
		if obj.Err != nil {
			return translate(obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, dir)
		h, err := cas.ParseHash(name)
		if err != nil || h.String() != name {
			continue // not ours
		}
		if err := fn(cas.Info{Hash: h, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// CleanTemp implements cas.TempCleaner: it deletes temp keys, and aborts
// unfinished multipart uploads under the prefix, older than olderThan (all
// of them when it is 0), but never an upload in progress. MinIO lists
// unfinished uploads only per key, so there only temp keys are found.
//
// In progress means two things. An upload of this process (Create until
// Commit or Cancel returns, the copy from a temporary key included) is
// never touched, whatever its age: with no grace, that is the only
// protection there can be. An upload of another process is judged by its
// activity, not its start: a multi-GB upload that began long ago but still
// sends parts is alive, so an upload is aborted only when its last part
// (from ListObjectParts), or its start when it has none, is older than the
// cutoff. Activity rather than a lease object keeps the bucket free of
// bookkeeping and needs nothing of the uploader; a process that crashed
// stops sending parts, so its uploads age out. Parts are dated by the
// server and the cutoff by the local clock: clock skew is small beside the
// grace of a real sweep (24h by default).
func (s *Store) CleanTemp(ctx context.Context, olderThan time.Duration) (int, int64, error) {
	cutoff := time.Now().Add(-olderThan)
	if olderThan == 0 {
		cutoff = time.Now().Add(time.Hour) // everything is old
	}
	var items int
	var n int64

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objects := s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + tmpDir, Recursive: true})
	var listErr error
	for obj := range objects {
		if obj.Err != nil {
			listErr = translate(obj.Err)
			break
		}
		if s.live.has(obj.Key) || !obj.LastModified.Before(cutoff) {
			continue
		}
		if err := s.remove(ctx, obj.Key); err != nil {
			listErr = fmt.Errorf("s3store: delete %s: %w", obj.Key, err)
			break
		}
		items++
		n += obj.Size
	}
	cancel()
	for range objects {
	}
	if listErr != nil {
		return items, n, listErr
	}

	uctx, ucancel := context.WithCancel(ctx)
	defer ucancel()
	uploads := s.client.ListIncompleteUploads(uctx, s.bucket, s.prefix, true)
	defer func() {
		ucancel()
		for range uploads {
		}
	}()
	for u := range uploads {
		if u.Err != nil {
			return items, n, fmt.Errorf("s3store: list unfinished uploads: %w", translate(u.Err))
		}
		if !s.ownsKey(u.Key) {
			continue
		}
		live := s.live.has(u.Key)
		if keepUpload(live, u.Initiated, time.Time{}, cutoff) {
			continue
		}
		last, err := s.lastPart(ctx, u.Key, u.UploadID)
		if err != nil {
			return items, n, fmt.Errorf("s3store: list parts of the upload of %s: %w", u.Key, err)
		}
		if keepUpload(live, u.Initiated, last, cutoff) {
			continue
		}
		// Abort this upload only: another one may be writing the same key.
		actx, acancel := s.bounded(ctx, 0)
		err = s.core.AbortMultipartUpload(actx, s.bucket, u.Key, u.UploadID)
		err = s.late(actx, err)
		acancel()
		if err != nil {
			if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
				continue
			}
			return items, n, fmt.Errorf("s3store: abort upload of %s: %w", u.Key, translate(err))
		}
		items++
		n += u.Size
	}
	return items, n, nil
}

// keepUpload says whether CleanTemp leaves an unfinished multipart upload
// alone: one of this process (live), or one whose start or last part
// (zero when it has none, or when not yet asked) is not older than cutoff.
func keepUpload(live bool, initiated, lastPart, cutoff time.Time) bool {
	return live || !initiated.Before(cutoff) || (!lastPart.IsZero() && !lastPart.Before(cutoff))
}

// lastPart returns when the newest part of an unfinished upload arrived
// (zero when none has). An upload that is gone meanwhile has no parts.
func (s *Store) lastPart(ctx context.Context, key, uploadID string) (time.Time, error) {
	var last time.Time
	marker := 0
	for range maxParts/1000 + 1 {
		pctx, cancel := s.bounded(ctx, 0)
		res, err := s.core.ListObjectParts(pctx, s.bucket, key, uploadID, marker, 1000)
		err = s.late(pctx, err)
		cancel()
		if err != nil {
			if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
				return last, nil
			}
			return last, translate(err)
		}
		for _, p := range res.ObjectParts {
			if p.LastModified.After(last) {
				last = p.LastModified
			}
		}
		if !res.IsTruncated {
			break
		}
		marker = res.NextPartNumberMarker
	}
	return last, nil
}

// remove deletes one key within the timeout.
func (s *Store) remove(ctx context.Context, key string) error {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	return s.late(ctx, translate(s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})))
}

// liveKeys counts the uploads of this process per key (two uploads may
// write the same final key). CleanTemp never touches a live key.
type liveKeys struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *liveKeys) add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = make(map[string]int)
	}
	l.n[key]++
}

func (l *liveKeys) drop(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key]--; l.n[key] <= 0 {
		delete(l.n, key)
	}
}

func (l *liveKeys) has(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[key] > 0
}

func (s *Store) ownsKey(key string) bool {
	return strings.HasPrefix(key, s.prefix+blobsDir) || strings.HasPrefix(key, s.prefix+tmpDir)
}

// IncompleteUploads counts the unfinished multipart uploads of blob h's
// key: uploads with a known hash that are in progress, or that a crash left
// behind. It works on MinIO, which lists unfinished uploads only per key.
func (s *Store) IncompleteUploads(ctx context.Context, h cas.Hash) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	key := s.Key(h)
	uploads := s.client.ListIncompleteUploads(ctx, s.bucket, key, false)
	defer func() {
		cancel()
		for range uploads {
		}
	}()
	count := 0
	for u := range uploads {
		if u.Err != nil {
			return count, translate(u.Err)
		}
		if u.Key == key {
			count++
		}
	}
	return count, nil
}

// Ping implements cas.Pinger: the bucket must answer.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3store: bucket %q: %w", s.bucket, s.late(ctx, translate(err)))
	}
	if !ok {
		return fmt.Errorf("s3store: bucket %q does not exist", s.bucket)
	}
	return nil
}

// Close implements cas.Backend; the HTTP client needs no closing.
func (s *Store) Close() error { return nil }

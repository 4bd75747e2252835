package s3store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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

	// maxIdleConnsPerHost is how many idle connections to the bucket are
	// kept for reuse (minio-go's transport keeps MaxIdleConns, 256, in all).
	maxIdleConnsPerHost = 128

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
	// PresignExpiry is how long the URLs of PresignGet (the redirects of
	// `Prefer: redirect`) stay valid; 0 means DefaultPresignExpiry. S3
	// accepts at most 7 days.
	PresignExpiry time.Duration
	// SpoolDir is the local directory where an upload whose hash is not
	// known in advance waits for it once it is too large to hold in memory
	// (see spool.go); "" means os.TempDir() ($TMPDIR, else /tmp). Open
	// fails when files cannot be created there.
	SpoolDir string
	// SpoolBytes bounds the bytes all uploads keep in SpoolDir at once:
	// past it an upload goes to a temporary key that the bucket copies.
	// 0 means DefaultSpoolBytes (16 GiB); a negative value turns spooling
	// off (and SpoolDir is not checked).
	SpoolBytes int64
}

// Store is a cas.Backend over an S3 bucket. It is safe for concurrent use.
type Store struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string
	partSize uint64
	timeout  time.Duration
	// presignExpiry is the life of a presigned URL.
	presignExpiry time.Duration

	// copyLimit is the size above which Commit copies with ComposeObject
	// rather than CopyObject, and composePartSize that copy's part size
	// (0: minio-go's default, 5 GiB). Tests lower them.
	copyLimit       int64
	composePartSize uint64
	// live are the keys this process is writing (see liveKeys).
	live liveKeys
	// spool is where uploads of unknown hash wait for it (spool.go).
	spool *spool

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
	sp, err := openSpool(cfg.SpoolDir, cfg.SpoolBytes)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
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
	// minio-go's transport keeps 16 idle connections per host: a server
	// answering more clients at once than that would dial and close a
	// connection to the bucket for every request past the 16th.
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3store: transport for %s: %w", host, err)
	}
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	client, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, Transport: tr})
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
		spool:     sp,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.presignExpiry, err = presignExpiry(cfg.PresignExpiry); err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
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

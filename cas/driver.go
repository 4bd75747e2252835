package cas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors. Backends translate their native errors into these in one
// place; callers branch on them with errors.Is.
var (
	// ErrNotFound: no blob is stored under the hash.
	ErrNotFound = errors.New("cas: not found")
	// ErrHashMismatch: the bytes given do not hash to the hash expected.
	// The concrete error is a *MismatchError.
	ErrHashMismatch = errors.New("cas: hash mismatch")
	// ErrTooLarge: a put went over the size limit it was given.
	ErrTooLarge = errors.New("cas: too large")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("cas: closed")
)

// MismatchError says what a put expected and what its bytes hashed to.
type MismatchError struct {
	Want, Got Hash
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("cas: hash mismatch: want %s, bytes hash to %s", e.Want, e.Got)
}

// Is makes errors.Is(err, ErrHashMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrHashMismatch }

// Info describes a stored blob.
type Info struct {
	Hash    Hash
	Size    int64
	ModTime time.Time // when the bytes were stored (file mtime, S3 LastModified)
}

// Reader reads one blob with random access (http.ServeContent needs Seek).
// The caller must Close it.
type Reader interface {
	io.ReadSeekCloser
	io.ReaderAt
	// Size is the blob's length in bytes.
	Size() int64
}

// Writer receives the bytes of one blob before its hash is final.
// Nothing written is visible under any hash until Commit returns nil.
// Cancel discards everything; it is safe to defer and to call after Commit.
type Writer interface {
	io.Writer
	// Commit makes the bytes durable and visible under h. The portable layer
	// has verified that the bytes hash to h and that size bytes were written;
	// the backend trusts it. Committing bytes that are already stored under h
	// succeeds (concurrent puts of the same bytes are safe).
	Commit(ctx context.Context, h Hash, size int64) error
	// Cancel discards the bytes and any temporary state. It returns nil when
	// there is nothing left to clean.
	Cancel() error
}

// CreateOptions say what is known of a blob before its bytes arrive.
type CreateOptions struct {
	// Known, when not nil, is the hash the bytes must have: a backend may
	// write straight to the final place, as long as nothing is visible
	// before Commit.
	Known *Hash
	// Size is the size the caller expects (an HTTP Content-Length), or -1
	// when unknown. It is a hint: a backend may preallocate or pick a way
	// of writing by it, but the bytes written may still differ (the
	// portable layer checks what the caller promised).
	Size int64
}

// Backend is what a blob store implements: one capability per method.
// Backends trust their arguments: the portable Store checks hashes and sizes,
// wraps errors and counts metrics.
type Backend interface {
	// Stat returns the blob's Info, or ErrNotFound.
	Stat(ctx context.Context, h Hash) (Info, error)
	// Open returns a Reader over the blob, or ErrNotFound. The caller must Close it.
	Open(ctx context.Context, h Hash) (Reader, error)
	// Create starts a new blob (see CreateOptions for what is known of it in
	// advance). If ctx is cancelled before Commit, the write fails and leaves
	// nothing behind.
	Create(ctx context.Context, opt CreateOptions) (Writer, error)
	// Delete removes the blob. Deleting an absent blob returns ErrNotFound.
	Delete(ctx context.Context, h Hash) error
	// Walk calls fn for every stored blob, in no promised order, until fn
	// returns an error (which Walk returns) or the blobs end.
	Walk(ctx context.Context, fn func(Info) error) error
	// Close releases the backend's resources.
	Close() error
}

// TempCleaner is implemented by backends that keep temporary data (partial
// files, temporary keys, unfinished multipart uploads). CleanTemp removes what
// is older than olderThan and reports how many items and bytes it removed.
type TempCleaner interface {
	CleanTemp(ctx context.Context, olderThan time.Duration) (items int, bytes int64, err error)
}

// BatchDeleter is implemented by backends that delete many blobs in one call
// (S3 DeleteObjects). Absent blobs are not an error.
type BatchDeleter interface {
	DeleteMany(ctx context.Context, hs []Hash) error
}

// Pinger is implemented by backends that can say whether they answer (readiness).
type Pinger interface {
	Ping(ctx context.Context) error
}

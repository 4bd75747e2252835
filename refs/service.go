package refs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/backoff"
)

// Sentinel errors of the service. Errors of the index and the blob store
// pass through wrapped, so callers also branch on index.ErrNotFound,
// index.ErrConflict, index.ErrBlobMissing, cas.ErrHashMismatch and the like.
var (
	// ErrInvalid: the request itself is wrong (an Idempotency-Key too long,
	// a missing required field). The API answers 400.
	ErrInvalid = errors.New("refs: invalid request")
	// ErrKeyReused: an Idempotency-Key was sent again with another request.
	// The API answers 409.
	ErrKeyReused = errors.New("refs: idempotency key reused with another request")
	// ErrRetry: the request could not be completed now and changed nothing
	// the client relies on; sending it again (with its body) will succeed.
	// The API answers 503.
	ErrRetry = errors.New("refs: try again")
	// ErrBlobStoreUnavailable: the blob store did not answer Ping. (An
	// index that does not answer is index.ErrUnavailable.) The API answers
	// 503.
	ErrBlobStoreUnavailable = errors.New("refs: blob store unavailable")
)

// Defaults of Options.
const (
	DefaultCacheBytes     = 64 << 20
	DefaultCacheMaxBlob   = 1 << 20
	DefaultIdempotencyTTL = 25 * time.Hour
	DefaultBusyWait       = 10 * time.Second
	// storeAttempts bounds how often a commit stores its bytes again after
	// a sweep took them.
	storeAttempts = 3
	// olxFetchers bounds the blob reads one Resolve runs at once.
	olxFetchers = 16
)

// busyBackoff spaces the attempts of an upload that waits for a sweep
// deleting the same blob (within Options.BusyWait).
var busyBackoff = backoff.Policy{First: 10 * time.Millisecond, Max: 500 * time.Millisecond}

// Options configure a Service. The zero value is usable.
type Options struct {
	// CacheBytes bounds the memory of the small-blob cache; 0 is
	// DefaultCacheBytes, negative disables the cache.
	CacheBytes int64
	// CacheMaxBlob is the largest blob the cache keeps; 0 is DefaultCacheMaxBlob.
	CacheMaxBlob int64
	// IdempotencyTTL is how long an answer is kept for its Idempotency-Key;
	// 0 is DefaultIdempotencyTTL. API.md promises at least 24 hours.
	IdempotencyTTL time.Duration
	// InlineMaxBytes is the largest OLX stored in the index rather than the
	// blob store, when the index keeps inline blobs; 0 is
	// DefaultInlineMaxBytes, negative stores all OLX in the blob store.
	// Reads find a blob wherever it is, whatever this is now.
	InlineMaxBytes int64
	// BusyWait bounds how long an upload waits for a sweep that is deleting
	// the same blob; 0 is DefaultBusyWait.
	BusyWait time.Duration
	// Now is the clock of idempotency expiries; nil is time.Now.
	Now func() time.Time
	// Logger receives the rare events worth an operator's look (a sweep that
	// took bytes under a commit); nil discards them.
	Logger *slog.Logger
	// LatestFeed, when set, is the index's change feed, and turns on the
	// cache of the latest version of units read by uuid, kept true by
	// following it (latest.go): for an index whose every read is a round
	// trip (PostgreSQL).
	LatestFeed index.ChangeFeed
	// OpenBeside makes OpenBlob ask the blob store for the bytes while it
	// asks the index whether the blob is live, instead of after: for a
	// blob store whose every open is a round trip (S3), where the two
	// waits then overlap. The answer of the index still decides.
	OpenBeside bool
}

// Service binds names to content over an index and a blob store. It is safe
// for concurrent use. It does not own idx or blobs: the caller closes them.
type Service struct {
	idx   index.Store
	blobs *cas.Store
	opt   Options
	cache *blobCache
	log   *slog.Logger
	// inline is idx when it keeps inline blobs, else nil.
	inline index.InlineReader
	// latest is the latest-version cache (Options.FollowLatest), or nil.
	latest *latestCache

	// onBusy, when set, is called each time an upload finds its blob being
	// deleted by a sweep and is about to wait (tests).
	onBusy func(cas.Hash)
}

// New returns a Service over idx and blobs.
func New(idx index.Store, blobs *cas.Store, opt Options) *Service {
	if opt.CacheBytes == 0 {
		opt.CacheBytes = DefaultCacheBytes
	}
	if opt.CacheMaxBlob <= 0 {
		opt.CacheMaxBlob = DefaultCacheMaxBlob
	}
	if opt.IdempotencyTTL <= 0 {
		opt.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if opt.InlineMaxBytes == 0 {
		opt.InlineMaxBytes = DefaultInlineMaxBytes
	}
	if opt.BusyWait <= 0 {
		opt.BusyWait = DefaultBusyWait
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	inline, _ := idx.(index.InlineReader)
	s := &Service{
		inline: inline,
		idx:    idx,
		blobs:  blobs,
		opt:    opt,
		cache:  newBlobCache(opt.CacheBytes, opt.CacheMaxBlob),
		log:    log,
	}
	if opt.LatestFeed != nil && opt.CacheBytes > 0 {
		s.latest = newLatestCache(opt.LatestFeed, log)
	}
	return s
}

// Ping says whether the index and the blob store answer (readiness).
func (s *Service) Ping(ctx context.Context) error {
	if err := s.idx.Ping(ctx); err != nil {
		if !errors.Is(err, index.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", index.ErrUnavailable, err)
		}
		return fmt.Errorf("refs: ping index: %w", err)
	}
	if err := s.blobs.Ping(ctx); err != nil {
		return fmt.Errorf("refs: ping blob store: %w: %w", ErrBlobStoreUnavailable, err)
	}
	return nil
}

// CacheStats returns the counters of the small-blob cache.
func (s *Service) CacheStats() CacheStats { return s.cache.stats() }

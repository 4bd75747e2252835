package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Store identity (DESIGN.md, invariant 6). An index and a blob store are
// bound to each other at first use: both record the same store id, the
// index in its own storage (index.Identity), the blob store in a STORE-ID
// file or object beside its blobs (blobIdentity). Every process that opens
// a configuration checks the binding before it touches a byte, because a
// sweep run over a blob store by an index that is not its own deletes every
// blob the index does not know.
//
// The rules, in the order check applies them:
//   - both sides record an id: they must be equal;
//   - only the blob store records one: refused (a new or foreign index over
//     a used blob store);
//   - otherwise the contents must agree: an index without live blobs over a
//     blob store with blobs is refused (a fresh database or data directory),
//     an index with live blobs over a blob store without any is refused (a
//     wrong prefix or bucket), and when both hold blobs the index's live
//     blobs must be in the blob store (all of them, or a spread sample of
//     identitySample when there are more);
//   - then the binding is written: the index's id, or a new one, index
//     first and blob store second (see bind).

// ErrStoreIdentity is wrapped by every refusal of the store identity check:
// the index and the blob store are not known to belong to each other.
var ErrStoreIdentity = errors.New("app: store identity")

// identitySample bounds how many live blobs the first binding of an
// existing deployment looks for in the blob store. Up to it, every live
// blob is checked; beyond it, a sample spread evenly over the hash order.
// One stat per blob is 10,000 round trips to a bucket at most, seconds; a
// million would take many minutes at every upgrade. A sample this size
// misses a mismatch only when nearly all of the index's blobs are present,
// which a wrong bucket or prefix never gives. The blob store's own count is
// not compared: counting it means listing the whole bucket, and extra blobs
// (strays a sweep will reclaim) are no sign of a wrong pairing anyway.
var identitySample = 10000 // a variable for the test of the sample

// identityStatJobs is how many stats the agreement check runs at once.
const identityStatJobs = 8

// blobIdentity is implemented by the blob store backends that record a
// store id (cas/dirstore, cas/s3store).
type blobIdentity interface {
	// StoreID returns the recorded store id, "" when none is.
	StoreID(ctx context.Context) (string, error)
	// SetStoreID records id, replacing any; "" removes the record.
	SetStoreID(ctx context.Context, id string) error
}

// IdentityError is a refusal of the store identity check. It names both
// sides (without secrets) and says what the operator should do.
type IdentityError struct {
	Index, Blobs     string // the two stores, as Config.Describe names them
	IndexID, BlobsID string // the ids recorded, "" for none
	Problem          string // what does not fit
	Advice           string // what to do
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("app: refusing to open: index %s (%s) and blob store %s (%s) %s. %s",
		e.Index, describeID(e.IndexID), e.Blobs, describeID(e.BlobsID), e.Problem, e.Advice)
}

// Is makes errors.Is(err, ErrStoreIdentity) true.
func (e *IdentityError) Is(target error) bool { return target == ErrStoreIdentity }

func describeID(id string) string {
	if id == "" {
		return "no store id"
	}
	return "store id " + id
}

// Advice shared by several refusals.
const (
	adviceConfig = "Check --database-url (BLOCKSTORE_DATABASE_URL), --data, --s3-bucket and --s3-prefix: " +
		"they probably name stores of two different deployments."
	adviceForce = "If you are sure this index and this blob store belong together (e.g. after restoring one of them), " +
		"bind them with 'blockstore identity bind --force' and the same store flags; see README, Store identity."
)

// IdentityReport is what each side of a configuration records.
type IdentityReport struct {
	Index   string `json:"index"`
	Blobs   string `json:"blobs"`
	IndexID string `json:"index_store_id"`
	BlobsID string `json:"blob_store_id"`
	// Bound is true when both ids are recorded and equal.
	Bound bool `json:"bound"`
	// IndexFresh is true when the index does not exist yet (nothing was
	// created to look).
	IndexFresh bool `json:"index_fresh,omitempty"`
	// IndexHoldsBlobs and BlobsHoldBlobs say whether each side has any
	// blob: a live registry row, a stored blob.
	IndexHoldsBlobs bool `json:"index_holds_blobs"`
	BlobsHoldBlobs  bool `json:"blob_store_holds_blobs"`
}

// binding checks and writes the store identity of one opened configuration.
type binding struct {
	idx       index.Store    // the engine, for the agreement check
	idxID     index.Identity // nil: a fresh index not created yet
	blobs     *cas.Store
	blobID    blobIdentity
	idxName   string
	blobsName string
}

func newBinding(cfg Config, idx index.Store, blobs *cas.Store) (*binding, error) {
	b := &binding{idx: idx, blobs: blobs}
	b.idxName, b.blobsName = cfg.describeStores()
	if idx != nil {
		id, ok := idx.(index.Identity)
		if !ok {
			return nil, fmt.Errorf("app: index %s records no store id", b.idxName)
		}
		b.idxID = id
	}
	id, ok := blobs.Backend().(blobIdentity)
	if !ok {
		return nil, fmt.Errorf("app: blob store %s records no store id", b.blobsName)
	}
	b.blobID = id
	return b, nil
}

func (b *binding) refuse(indexID, blobsID, problem, advice string) error {
	return &IdentityError{Index: b.idxName, Blobs: b.blobsName, IndexID: indexID, BlobsID: blobsID, Problem: problem, Advice: advice}
}

// checkFresh is the check against an index that does not exist yet (a
// PostgreSQL database without the schema, an absent Pebble directory), run
// before anything creates it: such an index may only be bound to a blob
// store that is fresh too.
func (b *binding) checkFresh(ctx context.Context) error {
	bid, err := b.blobID.StoreID(ctx)
	if err != nil {
		return fmt.Errorf("app: store identity of %s: %w", b.blobsName, err)
	}
	if bid != "" {
		return b.refuse("", bid, "do not belong together: the index is new and the blob store belongs to another deployment",
			adviceConfig+" "+adviceForce)
	}
	holds, err := b.blobsHold(ctx)
	if err != nil {
		return err
	}
	if holds {
		return b.refuse("", "", "do not belong together: the index is new and the blob store already holds blobs",
			adviceConfig+" A sweep from the new index would delete every blob of the old one. "+adviceForce)
	}
	return nil
}

// check applies the rules of the package comment and, when they hold and
// the binding is not complete, writes it.
func (b *binding) check(ctx context.Context) (bound string, err error) {
	iid, err := b.idxID.StoreID(ctx)
	if err != nil {
		return "", fmt.Errorf("app: store identity of %s: %w", b.idxName, err)
	}
	bid, err := b.blobID.StoreID(ctx)
	if err != nil {
		return "", fmt.Errorf("app: store identity of %s: %w", b.blobsName, err)
	}
	switch {
	case iid != "" && iid == bid:
		return "", nil
	case iid != "" && bid != "":
		return "", b.refuse(iid, bid, "belong to different deployments", adviceConfig+" "+adviceForce)
	case bid != "":
		return "", b.refuse(iid, bid, "do not belong together: the blob store belongs to a deployment whose id this index does not record",
			adviceConfig+" "+adviceForce)
	}

	iHolds, err := b.indexHolds(ctx)
	if err != nil {
		return "", err
	}
	bHolds, err := b.blobsHold(ctx)
	if err != nil {
		return "", err
	}
	switch {
	case !iHolds && bHolds:
		return "", b.refuse(iid, bid, "do not belong together: the index holds no blobs and the blob store does",
			adviceConfig+" A sweep from this index would delete every blob of the blob store. "+adviceForce)
	case iHolds && !bHolds:
		return "", b.refuse(iid, bid, "do not belong together: the index names blobs and the blob store holds none",
			adviceConfig+" "+adviceForce)
	case iHolds && bHolds:
		absent, missing, checked, err := b.missing(ctx)
		if err != nil {
			return "", err
		}
		if absent > 0 {
			return "", b.refuse(iid, bid, fmt.Sprintf("do not belong together: %d of %d live blobs of the index checked are not in the blob store (e.g. %s)",
				absent, checked, missing[0]), adviceConfig+" "+adviceForce)
		}
	}
	return b.bind(ctx, iid)
}

// bind writes the binding: the index's id (or a new one) into the index
// when it has none, then into the blob store. Index first: a crash between
// the two leaves an index with an id over a blob store without one, which
// the next check finishes binding after the same agreement check. Blob
// store first would leave a blob store id that no index records, which is
// exactly what a second index over a used blob store looks like, and
// refused.
func (b *binding) bind(ctx context.Context, iid string) (string, error) {
	id := iid
	if id == "" {
		var err error
		// Replicas binding at once agree on the first id written.
		if id, err = b.idxID.BindStoreID(ctx, uuid.NewString()); err != nil {
			return "", fmt.Errorf("app: bind %s: %w", b.idxName, err)
		}
	}
	// Read again just before writing: another index that bound this blob
	// store meanwhile wins, and this one is refused.
	bid, err := b.blobID.StoreID(ctx)
	if err != nil {
		return "", fmt.Errorf("app: store identity of %s: %w", b.blobsName, err)
	}
	switch bid {
	case id:
		return id, nil
	case "":
		if err := b.blobID.SetStoreID(ctx, id); err != nil {
			return "", fmt.Errorf("app: bind %s: %w", b.blobsName, err)
		}
		return id, nil
	}
	return "", b.refuse(id, bid, "belong to different deployments", adviceConfig+" "+adviceForce)
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// indexHolds reports whether the index has a live blob in the blob store.
func (b *binding) indexHolds(ctx context.Context) (bool, error) {
	found := false
	err := b.idx.Blobs(ctx, func(bl index.Blob) error {
		// Inline blobs are in the index only: they say nothing of the
		// blob store.
		if bl.State == index.BlobLive && !bl.Inline {
			found = true
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, fmt.Errorf("app: store identity: list the blobs of %s: %w", b.idxName, err)
	}
	return found, nil
}

// blobsHold reports whether the blob store holds a blob.
func (b *binding) blobsHold(ctx context.Context) (bool, error) {
	found := false
	err := b.blobs.Walk(ctx, func(cas.Info) error {
		found = true
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, fmt.Errorf("app: store identity: list the blobs of %s: %w", b.blobsName, err)
	}
	return found, nil
}

// missing looks for the index's live blobs in the blob store: all of them
// up to identitySample, else every k-th in hash order (two passes over the
// registry, counting first). It returns how many it did not find, the first
// few of those, and how many it checked.
func (b *binding) missing(ctx context.Context) (int, []cas.Hash, int, error) {
	live := 0
	eachLive := func(fn func(cas.Hash) error) error {
		return b.idx.Blobs(ctx, func(bl index.Blob) error {
			if bl.State != index.BlobLive || bl.Inline {
				return nil
			}
			return fn(bl.Hash)
		})
	}
	if err := eachLive(func(cas.Hash) error { live++; return nil }); err != nil {
		return 0, nil, 0, fmt.Errorf("app: store identity: count the blobs of %s: %w", b.idxName, err)
	}
	step := 1
	if live > identitySample {
		step = (live + identitySample - 1) / identitySample
	}

	var (
		mu      sync.Mutex
		missing []cas.Hash // the first few
		absent  atomic.Int64
		checked atomic.Int64
	)
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan cas.Hash)
	for range identityStatJobs {
		g.Go(func() error {
			for h := range work {
				_, err := b.blobs.Stat(gctx, h)
				if errors.Is(err, cas.ErrNotFound) {
					absent.Add(1)
					mu.Lock()
					if len(missing) < 5 {
						missing = append(missing, h)
					}
					mu.Unlock()
				} else if err != nil {
					return fmt.Errorf("app: store identity: look for blob %s in %s: %w", h, b.blobsName, err)
				}
				checked.Add(1)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		i := 0
		return eachLive(func(h cas.Hash) error {
			i++
			if (i-1)%step != 0 {
				return nil
			}
			select {
			case work <- h:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	if err := g.Wait(); err != nil {
		return 0, nil, 0, err
	}
	return int(absent.Load()), missing, int(checked.Load()), nil
}

// describeStores names the index and the blob store of c without secrets.
func (c Config) describeStores() (idx, blobs string) {
	d := c.Describe()
	idx, blobs, _ = strings.Cut(strings.TrimPrefix(d, "index "), ", blobs ")
	return idx, blobs
}

// rawStores are a configuration's stores opened without the identity check,
// for the operator's identity command.
type rawStores struct {
	lock  interface{ Release() error }
	idx   index.Store // nil when the index is fresh and was not created
	blobs *cas.Store
	b     *binding
	fresh bool
}

func (r *rawStores) close() error {
	var errs []error
	if r.blobs != nil {
		errs = append(errs, r.blobs.Close())
	}
	if r.idx != nil {
		errs = append(errs, r.idx.Close())
	}
	if r.lock != nil {
		errs = append(errs, r.lock.Release())
	}
	return errors.Join(errs...)
}

// openRaw opens cfg's stores under the data directory's lock. A fresh index
// is created (and a database migrated) only when create is set.
func openRaw(ctx context.Context, cfg Config, create bool) (_ *rawStores, err error) {
	r := &rawStores{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	lock, err := cfg.acquire()
	if err != nil {
		return nil, err
	}
	if lock != nil {
		r.lock = lock
	}
	backend, err := openBlobBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r.blobs = cas.New(backend, cas.Options{})
	if r.fresh, err = indexFresh(ctx, cfg); err != nil {
		return nil, err
	}
	if !r.fresh || create {
		if r.idx, err = openIndex(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if r.b, err = newBinding(cfg, r.idx, r.blobs); err != nil {
		return nil, err
	}
	return r, nil
}

// report reads what each side records.
func (r *rawStores) report(ctx context.Context) (IdentityReport, error) {
	rep := IdentityReport{Index: r.b.idxName, Blobs: r.b.blobsName, IndexFresh: r.fresh && r.idx == nil}
	var err error
	if r.idx != nil {
		if rep.IndexID, err = r.b.idxID.StoreID(ctx); err != nil {
			return rep, fmt.Errorf("app: store identity of %s: %w", rep.Index, err)
		}
		if rep.IndexHoldsBlobs, err = r.b.indexHolds(ctx); err != nil {
			return rep, err
		}
	}
	if rep.BlobsID, err = r.b.blobID.StoreID(ctx); err != nil {
		return rep, fmt.Errorf("app: store identity of %s: %w", rep.Blobs, err)
	}
	if rep.BlobsHoldBlobs, err = r.b.blobsHold(ctx); err != nil {
		return rep, err
	}
	rep.Bound = rep.IndexID != "" && rep.IndexID == rep.BlobsID
	return rep, nil
}

// ShowIdentity reports the store ids that cfg's index and blob store
// record, and whether each holds blobs. It checks nothing, and creates or
// migrates no index (a fresh one is reported as such).
func ShowIdentity(ctx context.Context, cfg Config) (IdentityReport, error) {
	r, err := openRaw(ctx, cfg, false)
	if err != nil {
		return IdentityReport{}, err
	}
	defer r.close()
	return r.report(ctx)
}

// ForceBind binds cfg's index and blob store to each other whatever they
// record: the operator's answer to a refusal when they do belong together
// (an index restored from a dump older than store ids, a bucket copied
// under a new prefix, a database rebuilt over its bucket). The id kept is
// the blob store's when it has one (the blob store is what a wrong sweep
// would destroy, and other indexes may already be refused against it), else
// the index's, else a new one. It creates or migrates a fresh index.
func ForceBind(ctx context.Context, cfg Config) (IdentityReport, error) {
	r, err := openRaw(ctx, cfg, true)
	if err != nil {
		return IdentityReport{}, err
	}
	defer r.close()
	iid, err := r.b.idxID.StoreID(ctx)
	if err != nil {
		return IdentityReport{}, fmt.Errorf("app: store identity of %s: %w", r.b.idxName, err)
	}
	bid, err := r.b.blobID.StoreID(ctx)
	if err != nil {
		return IdentityReport{}, fmt.Errorf("app: store identity of %s: %w", r.b.blobsName, err)
	}
	id := bid
	if id == "" {
		id = iid
	}
	if id == "" {
		id = uuid.NewString()
	}
	// Index first, as in bind.
	if iid != id {
		if err := r.b.idxID.ReplaceStoreID(ctx, id); err != nil {
			return IdentityReport{}, fmt.Errorf("app: bind %s: %w", r.b.idxName, err)
		}
	}
	if bid != id {
		if err := r.b.blobID.SetStoreID(ctx, id); err != nil {
			return IdentityReport{}, fmt.Errorf("app: bind %s: %w", r.b.blobsName, err)
		}
	}
	return r.report(ctx)
}

package index

import (
	"context"
	"fmt"

	"github.com/blockstore/blockstore/cas"
)

// Inline blobs: an engine may keep the bytes of small blobs (OLX) in the
// index itself, beside their registry row, so that a unit commit is one
// index transaction and an OLX read one index read, with no blob store
// round trip. Such a blob is an ordinary registry row (same hash, same
// states, leases and sweep protocol) with Blob.Inline set; its bytes go
// when the sweep forgets the row. Blobs written before, or larger than the
// caller's threshold, stay in the blob store and stay readable there.
//
// Both capabilities are optional: callers find them by type assertion and
// fall back to the blob store when an engine has neither.

// InlineWriter is the write capability: a Tx of an engine that keeps
// inline blobs implements it.
type InlineWriter interface {
	// PutInlineBlob makes b, whose hash is h (the caller computed it), a
	// live blob inside the transaction, so that a version written after it
	// in the same transaction may name it: an absent row becomes live and
	// inline with a fresh lease; a pending row (an upload under way) becomes
	// live and inline too; a live row is left as it is, wherever its bytes
	// are. A deleting row is left alone too: the version that names it
	// then fails with ErrBlobMissing, and the caller retries once the sweep
	// has forgotten the row. Errors other than the engine's own are
	// reported by the transaction's next statement or its commit.
	PutInlineBlob(h cas.Hash, b []byte) error
}

// InlineReader is the read capability: a Store that keeps inline blobs
// implements it.
type InlineReader interface {
	// InlineBlobs returns the bytes of those of hs that are kept in the
	// index (any state). Hashes not in the result are in the blob store,
	// or nowhere. One round trip whatever len(hs). The caller must not
	// modify the slices.
	InlineBlobs(ctx context.Context, hs []cas.Hash) (map[cas.Hash][]byte, error)
	// UnitInline is Reader.Unit with the unit's bytes when they are kept
	// in the index (nil otherwise), read together: one round trip.
	UnitInline(ctx context.Context, ref Ref) (Unit, []byte, error)
}

// PutInlineBlob passes InlineWriter through the change feed's recording
// wrapper: storing bytes is no change of an entity, so nothing is recorded.
// A transaction of an engine without inline blobs says ErrUnavailable.
func (r *recordingTx) PutInlineBlob(h cas.Hash, b []byte) error {
	w, ok := r.Tx.(InlineWriter)
	if !ok {
		return fmt.Errorf("index: the engine keeps no inline blobs: %w", ErrUnavailable)
	}
	return w.PutInlineBlob(h, b)
}

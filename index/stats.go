package index

import (
	"context"

	"github.com/google/uuid"
)

// Totals are the figures of a whole index that operators watch: how much is
// stored and how much the versions would take without deduplication.
type Totals struct {
	// Collections, Units and Assets count the entities that lists show:
	// every collection, and the units and assets with a published version
	// (draft-only ones are not counted, as lists do not show them).
	Collections, Units, Assets int64
	// Versions counts the stored versions of units and assets, drafts
	// included: every version that names a blob.
	Versions int64
	// Blobs and StoredBytes count the live blobs of the registry and the sum
	// of their sizes: the bytes the blob store holds for the index (pending
	// uploads and blobs a sweep is deleting are left out).
	Blobs, StoredBytes int64
	// ReferencedBytes is the sum of the sizes of every stored version of
	// units and assets (drafts included): the bytes the versions would take
	// if each stored its own copy. ReferencedBytes/StoredBytes is the
	// deduplication ratio.
	ReferencedBytes int64
}

// CollectionTotals are the figures of one collection.
type CollectionTotals struct {
	// Units and Assets count those with a published version.
	Units, Assets int64
	// Bytes is the sum of the sizes of their latest published versions: the
	// logical size of the collection as a reader sees it.
	Bytes int64
}

// SyncStats is an optional capability of a Store whose commits share
// durable writes (the embedded engine's group sync of the WAL), found by
// type assertion: how many syncs made commits durable, and how many
// commits (write batches) they covered. Both only grow.
type SyncStats interface {
	SyncCounts() (syncs, commits uint64)
}

// Stats is an optional capability of a Store: counts and sums for the
// operators' console and GET /api/v1/stats, found by type assertion. Both
// answer from one consistent state of the index. They are meant for a page
// an operator opens, not for the request path: an engine may scan.
type Stats interface {
	// Totals returns the figures of the whole index.
	Totals(ctx context.Context) (Totals, error)
	// CollectionTotals returns the figures of one collection, or
	// ErrNotFound when there is no such collection.
	CollectionTotals(ctx context.Context, id uuid.UUID) (CollectionTotals, error)
}

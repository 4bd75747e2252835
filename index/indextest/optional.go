package indextest

import (
	"context"

	"github.com/blockstore/blockstore/index"
)

// LinkRowCounter is an optional interface of a Store: the number of stored
// link rows (one per link of each distinct link set), so the suite can check
// that unchanged link sets do not multiply rows. The suite finds it by type
// assertion and skips the check, saying so, when a backend lacks it.
type LinkRowCounter interface {
	LinkRowCount(ctx context.Context) (int64, error)
}

// BlobLoader is an optional interface of a Store for benchmark set-up:
// register many blobs as live at once (each with its Hash and Size; State,
// CreatedAt and LeasedAt are set by the store to live and now), durably, in
// one or a few transactions. Without it the benchmarks call BeginBlob and
// FinishBlob per hash, which makes loading a million versions slow.
type BlobLoader interface {
	LoadBlobs(ctx context.Context, blobs []index.Blob) error
}

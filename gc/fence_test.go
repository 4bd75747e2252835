package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/testenv"
)

// production is two replicas' handles on one PostgreSQL index and one
// MinIO bucket, on the real clock.
type production struct {
	url   string
	idxA  index.Store
	idxB  index.Store
	store *cas.Store
}

func openProduction(t *testing.T) *production {
	t.Helper()
	url := testenv.NewDatabase(t)
	srv := testenv.MinIO(t)
	p := &production{url: url}
	for _, dst := range []*index.Store{&p.idxA, &p.idxB} {
		s, err := pgindex.Open(context.Background(), url, index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		*dst = s
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	s3, err := s3store.Open(context.Background(), s3store.Config{
		Endpoint: srv.Endpoint, Bucket: "gc-" + hex.EncodeToString(rnd[:]), Prefix: "blockstore",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Insecure: true, CreateBucket: true,
		Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.store = cas.New(s3, cas.Options{})
	t.Cleanup(func() { p.store.Close() })
	return p
}

// terminateGCLock ends the database session holding an advisory lock in
// this test's database: the sweep lock's, as a network cut or a failover
// would. It returns once the sessions have ended (the timeout form of
// pg_terminate_backend waits for them), so the lock is free.
func (p *production) terminateGCLock(ctx context.Context) (int, error) {
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	return n, err
}

// TestLockLostBetweenCheckAndDelete: sweep A claims an unreferenced blob
// and checks its lock; then, before A's delete goes out, A's lock session
// dies, sweep B (another replica) takes the lock and finishes A's claim,
// and a writer uploads the same bytes again and commits a version naming
// them. A's delete must not remove the new bytes.
func TestLockLostBetweenCheckAndDelete(t *testing.T) {
	p := openProduction(t)
	ctx := context.Background()
	data := []byte("bytes a writer uploads again while a dead sweep's delete is pending " + time.Now().String())
	h, err := uploadBlob(ctx, p.idxA, p.store, data)
	if err != nil {
		t.Fatal(err)
	}
	const bound = 1500 * time.Millisecond
	zero := time.Duration(0)
	a := New(p.idxA, p.store, Options{DeleteBound: bound, MaxDeleteShare: 1})
	b := New(p.idxB, p.store, Options{DeleteBound: bound, MaxDeleteShare: 1})
	defer a.Close()
	defer b.Close()

	var (
		hooked   atomic.Bool
		bReport  Report
		bErr     error
		assetErr error
	)
	a.beforeDelete = func(dctx context.Context, hs []cas.Hash) {
		if len(hs) != 1 || hs[0] != h || hooked.Swap(true) {
			return
		}
		if n, err := p.terminateGCLock(ctx); err != nil || n != 1 {
			t.Errorf("terminate the lock's session: %d sessions, %v", n, err)
			return
		}
		// B takes the lock and resumes A's claim: it must wait out the bound.
		bReport, bErr = b.Sweep(ctx, Request{Grace: &zero})
		if bErr != nil {
			return
		}
		// The bytes are gone and the row forgotten: a writer uploads them
		// again and commits a version that names them.
		if _, err := uploadBlob(ctx, p.idxB, p.store, data); err != nil {
			assetErr = err
			return
		}
		assetErr = p.idxB.Update(ctx, func(tx index.Tx) error {
			c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "c"}})
			if err != nil {
				return err
			}
			_, err = tx.CreateAsset(index.NewAsset{Collection: c.ID, MediaType: "application/octet-stream", Hash: h})
			return err
		})
	}
	_, errA := a.Sweep(ctx, Request{Grace: &zero})
	if !hooked.Load() {
		t.Fatal("sweep A never reached the delete of the blob")
	}
	if bErr != nil {
		t.Fatalf("sweep B: %v", bErr)
	}
	if assetErr != nil {
		t.Fatalf("the writer: %v", assetErr)
	}
	if bReport.BlobsDeleted != 1 {
		t.Errorf("sweep B deleted %d blobs, want A's claim (1)", bReport.BlobsDeleted)
	}
	if errA == nil || !errors.Is(errA, context.DeadlineExceeded) {
		t.Errorf("sweep A: %v, want its delete refused past the bound", errA)
	}
	got, err := p.store.ReadAll(ctx, h, 1<<20)
	if err != nil || string(got) != string(data) {
		t.Fatalf("the re-uploaded blob a version names: %v (%d bytes)", err, len(got))
	}
	row, err := p.idxA.Blob(ctx, h)
	if err != nil || row.State != index.BlobLive {
		t.Fatalf("its row: %+v, %v; want live", row, err)
	}
}

// newS3World is a world on PostgreSQL and a fresh MinIO bucket, with the
// test clock (its dir is nil: no test on it touches files).
func newS3World(t *testing.T) *world {
	t.Helper()
	clk := indextest.NewClock(indextest.Epoch)
	idx := openPostgres(t, index.Options{Now: clk.Now})
	srv := testenv.MinIO(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	s3, err := s3store.Open(context.Background(), s3store.Config{
		Endpoint: srv.Endpoint, Bucket: "gc-" + hex.EncodeToString(rnd[:]), Prefix: "blockstore",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Insecure: true, CreateBucket: true,
		Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	store := cas.New(s3, cas.Options{})
	t.Cleanup(func() { store.Close() })
	w := &world{t: t, ctx: context.Background(), clk: clk, idx: idx, store: store}
	w.coll = w.collection("c")
	return w
}

package s3store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestConformance(t *testing.T) {
	castest.Run(t, func(t *testing.T) cas.Backend { return open(t) })
}

func BenchmarkBackend(b *testing.B) {
	castest.Bench(b, func(b *testing.B) cas.Backend { return open(b) })
}

// open returns a store over a fresh bucket of the test MinIO, under a prefix.
func open(tb testing.TB) *s3store.Store {
	tb.Helper()
	srv := testenv.MinIO(tb)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	s, err := s3store.Open(context.Background(), s3store.Config{
		Endpoint:     srv.Endpoint,
		Bucket:       "test-" + hex.EncodeToString(rnd[:]),
		Prefix:       "blockstore",
		AccessKey:    srv.AccessKey,
		SecretKey:    srv.SecretKey,
		Insecure:     true,
		CreateBucket: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

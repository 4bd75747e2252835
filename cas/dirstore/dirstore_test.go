package dirstore_test

import (
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
	"github.com/blockstore/blockstore/cas/dirstore"
)

func TestConformance(t *testing.T) {
	castest.Run(t, func(t *testing.T) cas.Backend { return open(t, t.TempDir()) })
}

func BenchmarkBackend(b *testing.B) {
	castest.Bench(b, func(b *testing.B) cas.Backend { return open(b, b.TempDir()) })
}

func open(tb testing.TB, dir string) *dirstore.Store {
	tb.Helper()
	s, err := dirstore.Open(dir, dirstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

package pebbleindex

import (
	"testing"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
)

func TestCopyConformance(t *testing.T) {
	indextest.RunCopy(t, func(t *testing.T, opt index.Options) index.Store {
		return openTest(t, Options{Options: opt, InMemory: true})
	})
}

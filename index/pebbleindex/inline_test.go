package pebbleindex

import (
	"testing"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
)

func TestInline(t *testing.T) {
	indextest.RunInline(t, func(t *testing.T, opt index.Options) index.Store {
		return openTest(t, Options{Options: opt, InMemory: true})
	})
}

package dirstore_test

import (
	"testing"

	"github.com/blockstore/blockstore/cas/castest"
)

// TestStoreID: the id file is read back, replaced and removed, and neither
// Walk nor CleanTemp ever sees it.
func TestStoreID(t *testing.T) {
	s, d := newStore(t)
	castest.RunStoreID(t, s, d)
}

package s3store_test

import (
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
)

// TestStoreID: the id object is read back, replaced and removed, and
// neither Walk nor CleanTemp ever sees it.
func TestStoreID(t *testing.T) {
	b := open(t)
	castest.RunStoreID(t, cas.New(b, cas.Options{}), b)
}

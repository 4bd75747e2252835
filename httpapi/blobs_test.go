package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/blockstore/blockstore/gc"
)

// TestSweptBlobIsGoneForGETAndHEAD: once a sweep has removed a blob, GET
// and HEAD of its hash both answer 404, also when the small-blob cache held
// its bytes (a unit's OLX, read before the unit was deleted).
func TestSweptBlobIsGoneForGETAndHEAD(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.newCollection(t)
	u := e.newUnit(t, c, "<problem>soon swept</problem>")
	path := "/api/v1/blobs/" + u.Hash

	// Warm the cache: the OLX and the blob by hash are served from it.
	e.call(t, "GET", "/api/v1/units/"+u.UUID+"/olx", nil).want(t, http.StatusOK, nil)
	before := e.svc.CacheStats()
	e.call(t, "GET", path, nil).want(t, http.StatusOK, nil)
	if after := e.svc.CacheStats(); after.Entries == 0 || after.Hits <= before.Hits {
		t.Fatalf("the blob was not served from the cache: before %+v, after %+v", before, after)
	}

	e.call(t, "DELETE", "/api/v1/units/"+u.UUID, nil).want(t, http.StatusNoContent, nil)
	col := gc.New(e.idx, e.blobs, gc.Options{})
	t.Cleanup(func() { col.Close() })
	zero := time.Duration(0)
	rep, err := col.Sweep(context.Background(), gc.Request{Grace: &zero, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsDeleted != 1 {
		t.Fatalf("the sweep deleted %d blobs, want the unit's OLX: %+v", rep.BlobsDeleted, rep)
	}

	e.call(t, "HEAD", path, nil).want(t, http.StatusNotFound, nil)
	e.call(t, "GET", path, nil).wantError(t, http.StatusNotFound, "not_found")
}

package app

import (
	"testing"

	"github.com/blockstore/blockstore/httpapi/apitest"
)

// TestContract runs the API contract suite, unchanged, against both
// deployments wired exactly as `blockstore serve` wires them.
func TestContract(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			apitest.Run(t, func(t *testing.T) string {
				return serve(t, openApp(t, d.cfg(t)))
			})
		})
	}
}

// TestContractInlineOff runs the suite again with inline blobs off
// (--inline-max-bytes 0): every OLX in the blob store, as before them.
func TestContractInlineOff(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			apitest.Run(t, func(t *testing.T) string {
				cfg := d.cfg(t)
				cfg.InlineMaxBytes = -1
				return serve(t, openApp(t, cfg))
			})
		})
	}
}

package httpapi

import (
	"testing"

	"github.com/blockstore/blockstore/httpapi/apitest"
)

// TestContract runs the contract suite of API.md against the embedded
// service: a fresh one (Pebble in memory, a temporary blob directory) for
// each section that asks.
func TestContract(t *testing.T) {
	apitest.Run(t, func(t *testing.T) string {
		return newEnv(t, envOptions{}).URL
	})
}

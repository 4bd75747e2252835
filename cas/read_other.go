//go:build !linux

package cas

import (
	"os"
	"sync/atomic"
)

// hashFile hashes the first size bytes of f with positioned reads.
func hashFile(f *os.File, size int64, stop *atomic.Bool) (Hash, error) {
	return preadFile(f, size, stop)
}

//go:build linux

package pebbleindex

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDiskSync measures the disk's limit for one writer: a 512-byte
// write then fdatasync, growing the file (as a fresh WAL does) and
// overwriting a preallocated one (as a recycled WAL does), in the
// directory the other benchmarks use.
func BenchmarkDiskSync(b *testing.B) {
	for _, grow := range []bool{true, false} {
		b.Run("grow="+strconv.FormatBool(grow), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "probe"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 512)
			if !grow {
				if _, err := f.Write(make([]byte, b.N*len(buf))); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if _, err := f.WriteAt(buf, int64(i*len(buf))); err != nil {
					b.Fatal(err)
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "syncs/s")
		})
	}
}

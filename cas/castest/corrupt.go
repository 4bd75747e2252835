package castest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// Corrupt changes the byte at offset at of the stored blob h, behind the
// Store's back, keeping its length (a backend's test knows how).
type Corrupt func(t *testing.T, b cas.Backend, h cas.Hash, at int64)

// RunCorruption checks that a blob whose stored bytes changed is never
// served whole, and that the Store's Observer hears of it (a mismatch of
// OpOpen or OpVerify): Open of a small blob fails, a sequential read of a large
// one ends with an error wrapping ErrHashMismatch before its last byte,
// and an HTTP response on loopback that announced the blob's length (the
// Reader copied with io.Copy, which takes the Store's WriteTo fast path
// where there is one) ends short, so the client sees an error. open
// returns a fresh, empty backend.
func RunCorruption(t *testing.T, open func(t *testing.T) cas.Backend, corrupt Corrupt) {
	for _, tc := range []struct {
		name string
		size int64
		at   func(size int64) int64
	}{
		{"SmallFirstByte", 1000, func(int64) int64 { return 0 }},
		{"LargeFirstByte", 3<<20 + 17, func(int64) int64 { return 0 }},
		{"LargeMiddle", 3<<20 + 17, func(n int64) int64 { return n / 2 }},
		{"LargeLastByte", 3<<20 + 17, func(n int64) int64 { return n - 1 }},
		// Past the 4 MiB a local file is read whole to be hashed (mapped
		// in windows instead), in the third window.
		{"HugeLateWindow", 9<<20 + 5, func(n int64) int64 { return n - 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			info := f.put(NewContent(uint64(len(tc.name)), tc.size).Bytes(), cas.PutOptions{})
			corrupt(t, f.b, info.Hash, tc.at(tc.size))
			small := tc.size <= cas.DefaultVerifyReadsUpTo
			obs := &mismatches{}
			f.s = f.store(cas.Options{Observer: obs})

			r, err := f.s.Open(f.ctx, info.Hash)
			switch {
			case small && !errors.Is(err, cas.ErrHashMismatch):
				t.Fatalf("Open of a corrupt small blob: %v, want ErrHashMismatch", err)
			case !small && err != nil:
				t.Fatalf("Open of a corrupt large blob: %v (it fails at the end, not here)", err)
			case !small:
				n, err := io.Copy(io.Discard, struct{ io.Reader }{r})
				r.Close()
				if !errors.Is(err, cas.ErrHashMismatch) || n >= tc.size {
					t.Fatalf("read %d of %d bytes of a corrupt blob, error %v; want fewer and ErrHashMismatch", n, tc.size, err)
				}
			}
			checkServedShort(t, f, info)
			if got := obs.count.Load(); got != 2 {
				t.Fatalf("the Observer heard of %d hash mismatches, want 2 (the read, the HTTP response)", got)
			}
		})
	}
}

// mismatches counts the reads an Observer is told ended in a hash mismatch.
type mismatches struct{ count atomic.Int64 }

func (m *mismatches) Observe(op string, _ int64, _ time.Duration, err error) {
	if (op == cas.OpOpen || op == cas.OpVerify) && errors.Is(err, cas.ErrHashMismatch) {
		m.count.Add(1)
	}
}

// checkServedShort serves the blob over HTTP on loopback and checks the
// client never reads it whole, and the server saw ErrHashMismatch.
func checkServedShort(t *testing.T, f *fixture, info cas.Info) {
	served := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r, err := f.s.Open(req.Context(), info.Hash)
		if err != nil {
			served <- err
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer r.Close()
		w.Header().Set("Content-Length", strconv.FormatInt(r.Size(), 10))
		_, err = io.Copy(w, r)
		served <- err
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	n, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && rerr == nil && n == info.Size {
		t.Fatalf("a corrupt blob of %d bytes was served whole", info.Size)
	}
	if err := <-served; !errors.Is(err, cas.ErrHashMismatch) {
		t.Fatalf("serving a corrupt blob: %v, want ErrHashMismatch", err)
	}
}

// FlipByte returns b with the byte at offset at changed.
func FlipByte(b []byte, at int64) []byte {
	if at < 0 || at >= int64(len(b)) {
		panic(fmt.Sprintf("castest: flip byte %d of %d", at, len(b)))
	}
	c := append([]byte(nil), b...)
	c[at] ^= 0x01
	return c
}

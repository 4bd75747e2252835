package httpapi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// Benchmarks of the figures, over loopback with the embedded
// default (Pebble on disk, blobs in a directory, every write fsynced):
//
//	go test -run '^$' -bench . -benchtime 3x ./httpapi
//
// Each iteration of a blob benchmark moves the whole set (2 × 256 MiB or
// 200 × 1 MiB); uploads send new bytes every iteration (hash computed by
// the client before the timer runs), downloads read blobs in the page cache.

var benchTransport = &http.Transport{
	Proxy:               nil,
	MaxIdleConnsPerHost: 64,
	DisableCompression:  true,
	WriteBufferSize:     256 << 10,
	ReadBufferSize:      256 << 10,
}

var benchClient = &http.Client{Transport: benchTransport, Timeout: 10 * time.Minute}

// blobSet is count blobs of size bytes, made distinct per round.
type blobSet struct {
	data   []byte
	size   int
	hashes []cas.Hash
}

func newBlobSet(count, size int) *blobSet {
	s := &blobSet{data: make([]byte, count*size), size: size, hashes: make([]cas.Hash, count)}
	r := rand.NewChaCha8([32]byte{1})
	r.Read(s.data)
	return s
}

func (s *blobSet) blob(i int) []byte { return s.data[i*s.size : (i+1)*s.size] }

// stamp makes every blob new for round n and computes the hashes.
func (s *blobSet) stamp(n int) {
	for i := range s.hashes {
		b := s.blob(i)
		binary.LittleEndian.PutUint64(b, uint64(n)<<20|uint64(i))
		s.hashes[i] = cas.Sum(b)
	}
}

// benchRound makes the bytes of every upload round new.
var benchRound atomic.Int64

func benchPut(b *testing.B, e *env, s *blobSet, clients int) {
	b.SetBytes(int64(len(s.data)))
	for b.Loop() {
		b.StopTimer()
		s.stamp(int(benchRound.Add(1)))
		b.StartTimer()
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := c; i < len(s.hashes); i += clients {
					req, _ := http.NewRequest("PUT", e.URL+"/api/v1/blobs/"+s.hashes[i].String(), bytes.NewReader(s.blob(i)))
					resp, err := benchClient.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("PUT: %d", resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		// Drop the round's bytes (timer stopped) so that the page cache
		// recycles its pages, as on a server whose cache is full. Without
		// this, every round writes into never-touched guest memory, which
		// on this VM costs more than the write itself (see the report).
		b.StopTimer()
		if err := e.blobs.DeleteMany(b.Context(), s.hashes); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func benchGet(b *testing.B, e *env, s *blobSet, clients int) {
	s.stamp(0)
	for i, h := range s.hashes {
		e.call(b, "PUT", "/api/v1/blobs/"+h.String(), s.blob(i))
	}
	b.SetBytes(int64(len(s.data)))
	for b.Loop() {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := c; i < len(s.hashes); i += clients {
					resp, err := benchClient.Get(e.URL + "/api/v1/blobs/" + s.hashes[i].String())
					if err != nil {
						b.Error(err)
						return
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || n != int64(s.size) || resp.StatusCode != http.StatusOK {
						b.Errorf("GET: %d, %d bytes, %v", resp.StatusCode, n, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

func BenchmarkBlobs(b *testing.B) {
	e := newEnv(b, envOptions{onDisk: true})
	big := newBlobSet(2, 256<<20)
	b.Run("PUT/256MiBx2/1client", func(b *testing.B) { benchPut(b, e, big, 1) })
	b.Run("GET/256MiBx2/1client", func(b *testing.B) { benchGet(b, e, big, 1) })
	big = nil
	small := newBlobSet(200, 1<<20)
	b.Run("PUT/1MiBx200/1client", func(b *testing.B) { benchPut(b, e, small, 1) })
	b.Run("PUT/1MiBx200/8clients", func(b *testing.B) { benchPut(b, e, small, 8) })
	b.Run("GET/1MiBx200/1client", func(b *testing.B) { benchGet(b, e, small, 1) })
	b.Run("GET/1MiBx200/8clients", func(b *testing.B) { benchGet(b, e, small, 8) })
}

// BenchmarkBLAKE3 is the raw hash rate on one core, for comparison.
func BenchmarkBLAKE3(b *testing.B) {
	data := newBlobSet(1, 256<<20).data
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		h := cas.NewHasher()
		for off := 0; off < len(data); off += 1 << 20 {
			h.Write(data[off : off+1<<20])
		}
		h.Sum()
	}
}

// BenchmarkDiskWrite is the disk's rate for a 256 MiB file written in
// 1 MiB pieces and fsynced, for comparison.
func BenchmarkDiskWrite(b *testing.B) {
	data := newBlobSet(1, 256<<20).data
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	n := 0
	for b.Loop() {
		n++
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(n)))
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := f.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		os.Remove(f.Name())
	}
}

// latencies reports the p50 and p99 of the durations.
func latencies(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds())
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// courseOLX is an OLX document of about 3 KB.
func courseOLX(i int) string {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "<problem display_name=\"Problem %d\" max_attempts=\"3\">\n", i)
	for j := range 24 {
		fmt.Fprintf(&buf, "  <p>Question %d.%d: what is the velocity of the block after %d seconds? Use g = 9.81 m/s².</p>\n", i, j, j)
	}
	buf.WriteString("</problem>\n")
	return buf.String()
}

func BenchmarkUnitReads(b *testing.B) {
	e := newEnv(b, envOptions{onDisk: true})
	c := e.newCollection(b)
	const units = 1000
	ids := make([]string, units)
	for i := range units {
		ids[i] = e.newUnit(b, c, courseOLX(i)).UUID
	}
	client := &http.Client{Transport: benchTransport}

	b.Run("GET-olx", func(b *testing.B) {
		var ds []time.Duration
		i := 0
		for b.Loop() {
			i++
			start := time.Now()
			resp, err := client.Get(e.URL + "/api/v1/units/" + ids[i%units] + "/olx")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ds = append(ds, time.Since(start))
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET olx: %d", resp.StatusCode)
			}
		}
		latencies(b, ds)
	})

	b.Run("POST-resolve-1000-with-olx", func(b *testing.B) {
		body, _ := json.Marshal(map[string]any{"refs": ids, "include_olx": true})
		var ds []time.Duration
		for b.Loop() {
			start := time.Now()
			resp, err := client.Post(e.URL+"/api/v1/resolve", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ds = append(ds, time.Since(start))
			if resp.StatusCode != http.StatusOK || n < units*2000 {
				b.Fatalf("resolve: %d, %d bytes", resp.StatusCode, n)
			}
		}
		latencies(b, ds)
	})
}

// randomStream is n pseudo-random bytes made as they are read.
type randomStream struct {
	r *rand.ChaCha8
	n int64
}

func (s *randomStream) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	s.r.Read(p)
	s.n -= int64(len(p))
	return len(p), nil
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS(b *testing.B) int64 {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range bytes.Split(st, []byte("\n")) {
		var kb int64
		if n, _ := fmt.Sscanf(string(line), "VmHWM: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	b.Skip("no VmHWM")
	return 0
}

// BenchmarkStreamingMemory uploads 4 GiB (POST /blobs, generated as it is
// sent) and reports how far the process's peak RSS rose meanwhile: client
// and server together, so the server's share is at most that.
func BenchmarkStreamingMemory(b *testing.B) {
	e := newEnv(b, envOptions{onDisk: true})
	const size = 4 << 30
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		// Reset the peak to the current RSS (Linux: clear_refs 5).
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Skipf("cannot reset the peak RSS: %v", err)
		}
		before := peakRSS(b)
		b.StartTimer()
		body := &randomStream{r: rand.NewChaCha8([32]byte{byte(benchRound.Add(1))}), n: size}
		req, _ := http.NewRequest("POST", e.URL+"/api/v1/blobs", body)
		resp, err := benchClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var out blobJSON
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || out.Size != size {
			b.Fatalf("POST: %d %+v", resp.StatusCode, out)
		}
		b.StopTimer()
		b.ReportMetric(float64(peakRSS(b)-before)/(1<<20), "peak-RSS-rise-MiB")
		e.blobs.Delete(b.Context(), out.Hash)
		b.StartTimer()
	}
}

// BenchmarkDecodeUnitBody decodes the body of a unit create as the bench's
// writers send it: 4 KiB of OLX and five links.
//
//	go test -run '^$' -bench DecodeUnitBody ./httpapi
func BenchmarkDecodeUnitBody(b *testing.B) {
	var olx bytes.Buffer
	for j := 0; olx.Len() < 4000; j++ {
		fmt.Fprintf(&olx, "  <p>Question %d: what is the velocity of the \"block\" after %d seconds? Use g = 9.81 m/s².</p>\n", j, j)
	}
	links := make([]map[string]string, 5)
	for i := range links {
		links[i] = map[string]string{"target": "0b8e1c7e-8d3a-4c1e-9f55-1a2b3c4d5e6f", "kind": "asset"}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // as the client encodes: no HTML escapes
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{"collection": "0b8e1c7e-8d3a-4c1e-9f55-1a2b3c4d5e6f",
		"name": "vertical/000001.xml", "olx": olx.String(), "links": links}); err != nil {
		b.Fatal(err)
	}
	body := buf.Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := http.NewRequest(http.MethodPost, "/api/v1/units", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var in unitIn
		if _, err := decodeJSON(r, 1<<20, false, &in); err != nil {
			b.Fatal(err)
		}
	}
}

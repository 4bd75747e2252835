package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// slowReader yields chunk bytes every pause, n times.
type slowReader struct {
	chunk []byte
	pause time.Duration
	n     int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	s.n--
	return copy(p, s.chunk), nil
}

// deadlines records the latest deadlines minRate set (onDeadline).
type deadlines struct {
	mu          sync.Mutex
	read, write time.Time // the latest set, lifted or not
}

func (d *deadlines) record(kind string, at time.Time) {
	if at.IsZero() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if kind == "read" {
		d.read = at
	} else {
		d.write = at
	}
}

// past waits until the latest deadline of kind has passed, plus margin:
// a deadline that was left in force would have fired by then.
func (d *deadlines) past(kind string, margin time.Duration) {
	d.mu.Lock()
	at := d.write
	if kind == "read" {
		at = d.read
	}
	d.mu.Unlock()
	<-time.After(time.Until(at) + margin)
}

func TestMinimumRate(t *testing.T) {
	const window = 300 * time.Millisecond
	var dl deadlines
	onDeadline = dl.record
	t.Cleanup(func() { onDeadline = nil })
	slowHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		// Thinking after the body, not the client's fault: past the read
		// deadline the body was read under, which must have been lifted.
		dl.past("read", window/2)
		if r.Context().Err() != nil {
			// A deadline left in force ended the request meanwhile.
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	e := newEnv(t, envOptions{
		server: ServerOptions{MinRateBytes: 16 << 10, MinRateWindow: window},
		api:    Options{Extra: []Route{{Method: "POST", Pattern: "/slow", Handler: slowHandler}}},
	})
	client := &http.Client{Timeout: 20 * time.Second}

	t.Run("a steady upload longer than many windows passes", func(t *testing.T) {
		chunk := bytes.Repeat([]byte("s"), 8<<10) // 32 KiB per window
		body := &slowReader{chunk: chunk, pause: window / 4, n: 24}
		data := bytes.Repeat(chunk, 24)
		req, _ := http.NewRequest("PUT", e.URL+"/api/v1/blobs/"+cas.Sum(data).String(), body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("steady upload: %d", resp.StatusCode)
		}
		// The connection is kept alive: a later request on it, once the
		// deadlines of the first have passed, is not cut by one left behind.
		dl.past("write", window/2)
		dl.past("read", window/2)
		resp, err = client.Head(e.URL + "/api/v1/blobs/" + cas.Sum(data).String())
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD after the upload: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("a handler that thinks after the body is not cut", func(t *testing.T) {
		resp, err := client.Post(e.URL+"/slow", "text/plain", strings.NewReader("x"))
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("a slow upload is cut off", func(t *testing.T) {
		chunk := bytes.Repeat([]byte("z"), 1<<10) // 4 KiB per window
		body := &slowReader{chunk: chunk, pause: window / 4, n: 40}
		data := bytes.Repeat(chunk, 40)
		h := cas.Sum(data)
		start := time.Now()
		req, _ := http.NewRequest("PUT", e.URL+"/api/v1/blobs/"+h.String(), body)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("slow upload answered %d", resp.StatusCode)
			}
		}
		if d := time.Since(start); d > 5*window {
			t.Fatalf("the slow client was served for %v", d)
		}
		resp, err = client.Head(e.URL + "/api/v1/blobs/" + h.String())
		if err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("HEAD after the cut: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("a slow reader of a download is cut off", func(t *testing.T) {
		data := bytes.Repeat([]byte("d"), 32<<20)
		h := cas.Sum(data)
		e.call(t, "PUT", "/api/v1/blobs/"+h.String(), data).want(t, http.StatusCreated, nil)
		resp, err := client.Get(e.URL + "/api/v1/blobs/" + h.String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// Take 8 MiB at once, then a trickle for many windows, then the
		// rest at once: a server that cut the connection meanwhile ends it
		// early (what the kernel buffered still arrives).
		got, err := io.CopyN(io.Discard, resp.Body, 8<<20)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<10)
		for start := time.Now(); time.Since(start) < 8*window; {
			n, err := resp.Body.Read(buf)
			got += int64(n)
			if err != nil {
				break
			}
			time.Sleep(window / 4)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		got += n
		if err == nil {
			t.Errorf("the download ended without an error")
		}
		if got >= int64(len(data)) {
			t.Fatalf("the slow reader got all %d bytes", got)
		}
	})
}

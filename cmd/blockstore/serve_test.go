package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// buildBinary builds the blockstore command once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "blockstore-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "blockstore")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// server is a `blockstore serve` process.
type server struct {
	cmd  *exec.Cmd
	URL  string
	done chan error
	logs *syncBuffer

	mu       sync.Mutex
	watchers map[string]chan struct{} // closed when a line holds the key
}

// logged returns a channel closed once the server has logged a line
// containing substr (at once when it already has).
func (s *server) logged(substr string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if strings.Contains(s.logs.String(), substr) {
		close(ch)
		return ch
	}
	if s.watchers == nil {
		s.watchers = map[string]chan struct{}{}
	}
	s.watchers[substr] = ch
	return ch
}

func (s *server) line(l string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintln(s.logs, l)
	for k, ch := range s.watchers {
		if strings.Contains(l, k) {
			close(ch)
			delete(s.watchers, k)
		}
	}
}

// inFlight reads the server's gauge of requests being served (the /metrics
// request that asks included).
func (s *server) inFlight(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var n int
		if _, err := fmt.Sscanf(sc.Text(), "blockstore_http_requests_in_flight %d", &n); err == nil {
			return n
		}
	}
	t.Fatal("no blockstore_http_requests_in_flight in /metrics")
	return 0
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`msg=listening addr=(https?://127\.0\.0\.1:\d+)`)

// startServer runs `blockstore serve` on a free loopback port with args and
// waits until it listens.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1), logs: &syncBuffer{}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.line(line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	select {
	case s.URL = <-found:
	case err := <-s.done:
		t.Fatalf("serve exited at start: %v\n%s", err, s.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not listen within 30s:\n%s", s.logs.String())
	}
	return s
}

// TestServeDrainsOnSIGTERM: a request in flight when SIGTERM arrives is
// completed, new connections are refused, and the process exits 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := startServer(t, "--data", data)

	// An upload that is still streaming when the signal arrives.
	payload := bytes.Repeat([]byte("drain me "), 1<<17) // ~1.1 MiB
	h := cas.Sum(payload)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/api/v1/blobs/"+h.String(), pr)
	req.ContentLength = int64(len(payload))
	result := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("upload in flight: %v", err)
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	if _, err := pw.Write(payload[:1<<16]); err != nil {
		t.Fatal(err)
	}
	// The server counts the upload among its requests in flight (beside
	// the /metrics request that asks): it is being served.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; s.inFlight(t) < 2; i++ {
		if i == 1000 {
			t.Fatal("the upload never became a request in flight")
		}
		<-tick.C
	}
	draining := s.logged("shutting down: draining requests in flight")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-draining:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start draining after SIGTERM:\n%s", s.logs.String())
	}
	if _, err := pw.Write(payload[1<<16:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-result; code != http.StatusCreated {
		t.Fatalf("upload in flight during SIGTERM: %d, want 201", code)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if !strings.Contains(s.logs.String(), "msg=stopped") {
		t.Fatalf("no clean stop in the log:\n%s", s.logs.String())
	}

	// The acknowledged blob is there after a restart.
	s2 := startServer(t, "--data", data)
	resp, err := http.Get(s2.URL + "/api/v1/blobs/" + h.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Fatalf("after restart: %d, %d bytes", resp.StatusCode, len(got))
	}
}

// TestDataDirectoryIsLocked: a second serve, or gc on the stores, is refused
// with a clear message while a serve holds the data directory; gc through
// --server works.
func TestDataDirectoryIsLocked(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := startServer(t, "--data", data)
	bin, _ := buildBinary()
	for _, args := range [][]string{
		{"serve", "--addr", "127.0.0.1:0", "--data", data},
		{"gc", "--data", data, "--dry-run"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "in use by another process") {
			t.Errorf("blockstore %q while serve runs: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command(bin, "gc", "--server", s.URL, "--dry-run", "--json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"dry_run": true`) {
		t.Fatalf("gc --server: %v\n%s", err, out)
	}
}

// TestServeCPUProfile: --cpu-profile leaves a profile that pprof reads once
// the server stops on SIGTERM.
func TestServeCPUProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.pprof")
	s := startServer(t, "--data", filepath.Join(dir, "data"), "--cpu-profile", prof)
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	p, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	// A pprof profile is a gzipped protocol buffer.
	zr, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		t.Fatalf("the profile is not gzipped: %v (%d bytes)", err, len(p))
	}
	if n, err := io.Copy(io.Discard, zr); err != nil || n == 0 {
		t.Fatalf("the profile's %d bytes do not unzip: %v", n, err)
	}
}

package faults

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// binaryPath is where the tests build the blockstore command: one stable
// path, replaced on each run, so that runs leave one file behind at most.
var binaryPath = filepath.Join(os.TempDir(), "blockstore-faults-bin", "blockstore")

// buildBinary builds cmd/blockstore once per test process.
var buildBinary = sync.OnceValues(func() (string, error) {
	if err := os.MkdirAll(filepath.Dir(binaryPath), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d", binaryPath, os.Getpid())
	out, err := exec.Command("go", "build", "-o", tmp, "github.com/blockstore/blockstore/cmd/blockstore").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	// Rename: a concurrent run keeps executing the inode it started.
	if err := os.Rename(tmp, binaryPath); err != nil {
		return "", err
	}
	return binaryPath, nil
})

func binary(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// logBuffer keeps what a process logged, for failure messages.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	if len(l.lines) > 2000 {
		l.lines = l.lines[len(l.lines)-1000:]
	}
}

// tail returns the last n lines.
func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// server is one `blockstore serve` process on a loopback port.
type server struct {
	cmd  *exec.Cmd
	URL  string
	logs *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

var listening = regexp.MustCompile(`msg=listening addr=(http://127\.0\.0\.1:\d+)`)

// startServer runs `blockstore serve --addr 127.0.0.1:0 args…` with env
// added to the environment and waits until it listens. The process is
// killed when t ends, if it still runs.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "info"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &logBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.add(line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.kill(t)
		if t.Failed() {
			t.Logf("server log (last lines):\n%s", s.logs.tail(60))
		}
	})
	select {
	case s.URL = <-found:
	case <-s.done:
		t.Fatalf("serve exited at start: %v\n%s", s.err, s.logs.tail(40))
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not listen within 60s:\n%s", s.logs.tail(40))
	}
	return s
}

// kill sends SIGKILL and waits until the process is gone.
func (s *server) kill(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not die within 30s of SIGKILL")
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Fatalf("serve exited with %v after SIGTERM\n%s", s.err, s.logs.tail(40))
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not stop within 60s of SIGTERM")
	}
}

// alive reports whether the process still runs.
func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// newClient returns a client of s that never retries: the tests see every
// answer as the server gave it.
func newClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url, client.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runCommand runs `blockstore args…` with env and returns its exit code
// and combined output.
func runCommand(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("blockstore %s: %v", args[0], err)
	}
	return 0, string(out)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitFor polls cond every 100ms until it returns nil or d passes, and
// returns its last error.
func waitFor(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

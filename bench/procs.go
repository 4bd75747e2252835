package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blockstore/blockstore/client"
)

// ErrServer is wrapped by the errors of a server process that failed to
// start or died.
var ErrServer = errors.New("bench: server failed")

// moduleRoot returns the directory of the go.mod that holds dir.
func moduleRoot(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("bench: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("bench: %s is not inside the blockstore module", dir)
	}
	return filepath.Dir(gomod), nil
}

// buildBinary builds cmd/blockstore of the module at root into dir and
// returns the binary's path.
func buildBinary(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "blockstore")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/blockstore")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench: go build ./cmd/blockstore: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return bin, nil
}

// tail keeps the last lines a process wrote, for error messages.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 20 {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, s)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// Server is a running `blockstore serve` process.
type Server struct {
	URL    string
	PID    int
	Client *client.Client

	cmd       *exec.Cmd
	transport *http.Transport
	logs      *tail
	done      chan struct{}
	err       error // of Wait, valid after done
}

var listeningAddr = regexp.MustCompile(`msg=listening addr=(http://\S+)`)

// startServer runs `bin serve --addr 127.0.0.1:0 args…` with env added to
// the environment and waits for its "listening" log line. The caller must Stop the server.
func startServer(ctx context.Context, bin string, env []string, args ...string) (*Server, error) {
	args = append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(cleanEnv(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrServer, bin, err)
	}
	s := &Server{PID: cmd.Process.Pid, cmd: cmd, logs: &tail{}, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		// Request logs go on being read (and dropped, but for the last
		// lines) so that the server never blocks on a full pipe.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*kib), mib)
		for sc.Scan() {
			line := sc.Text()
			s.logs.add(line)
			if m := listeningAddr.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		s.err = cmd.Wait()
		close(s.done)
	}()
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case s.URL = <-found:
	case <-s.done:
		return nil, fmt.Errorf("%w: blockstore serve exited at start (%v):\n%s", ErrServer, s.err, s.logs)
	case <-timer.C:
		s.Stop()
		return nil, fmt.Errorf("%w: blockstore serve did not log that it listens within 60s:\n%s", ErrServer, s.logs)
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	// The client's own transport, tuned as client.New tunes its default,
	// so that Stop can close its idle connections: http.Server.Shutdown
	// waits 5 s for a connection that was dialed and never used.
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.transport.MaxIdleConns = 256
	s.transport.MaxIdleConnsPerHost = 64
	s.transport.WriteBufferSize = 128 * kib
	s.transport.ReadBufferSize = 128 * kib
	c, err := client.New(s.URL, client.Options{HTTPClient: &http.Client{Transport: s.transport}})
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Client = c
	return s, nil
}

// cleanEnv is the environment without BLOCKSTORE_ variables, so that an
// operator's settings do not change what is measured.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BLOCKSTORE_") {
			env = append(env, kv)
		}
	}
	return env
}

// Err returns an error when the server has exited.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return fmt.Errorf("%w: blockstore serve exited (%v):\n%s", ErrServer, s.err, s.logs)
	default:
		return nil
	}
}

// Stop sends SIGTERM, waits for the server to drain and exit (killing it
// after 30 s) and returns how it exited.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return s.exitErr()
	default:
	}
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("%w: blockstore serve did not stop within 30s of SIGTERM", ErrServer)
	}
	return s.exitErr()
}

func (s *Server) exitErr() error {
	if s.err != nil {
		return fmt.Errorf("%w: blockstore serve exited with %v:\n%s", ErrServer, s.err, s.logs)
	}
	return nil
}

// PeakRSS is the server process's peak resident set size so far (VmHWM),
// in bytes.
func (s *Server) PeakRSS() (int64, error) { return procStatusBytes(s.PID, "VmHWM") }

// procStatusBytes reads a "kB" field of /proc/PID/status.
func procStatusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: read status of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != field {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return n * kib, nil
	}
	return 0, fmt.Errorf("bench: no %s in /proc/%d/status", field, pid)
}

// toolRun is how a command that exited ran.
type toolRun struct {
	Stdout  []byte
	Elapsed time.Duration
	// PeakRSS is the process's peak resident set size (VmHWM), in bytes,
	// as last read from /proc/PID/status while it ran.
	PeakRSS int64
}

// rssPoll is how often runToolEnv reads a command's VmHWM. VmHWM only
// grows, so a poll misses at most the growth of the last interval.
const rssPoll = 5 * time.Millisecond

// runTool runs `bin args…` to its end.
func runTool(ctx context.Context, bin string, args ...string) (toolRun, error) {
	return runToolEnv(ctx, bin, nil, args...)
}

// runToolEnv runs `bin args…` with env added to the environment. Its peak
// RSS is read from /proc, not from getrusage: the ru_maxrss of a child
// that os/exec started counts the parent's resident memory too (the child
// shares the parent's address space until it execs, and Linux carries
// that high-water mark over the exec).
func runToolEnv(ctx context.Context, bin string, env []string, args ...string) (toolRun, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return toolRun{}, fmt.Errorf("bench: blockstore %s: %w", args[0], err)
	}
	var run toolRun
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tick := time.NewTicker(rssPoll)
		defer tick.Stop()
		for {
			if hwm, err := procStatusBytes(cmd.Process.Pid, "VmHWM"); err == nil {
				run.PeakRSS = max(run.PeakRSS, hwm)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	run.Elapsed = time.Since(start)
	close(done)
	<-polled
	run.Stdout = stdout.Bytes()
	if err != nil {
		return run, fmt.Errorf("bench: blockstore %s: %w: %s", args[0], err, lastLines(stderr.String(), 20))
	}
	return run, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

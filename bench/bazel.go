package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BazelRemoteVersion is the bazel-remote the transfer peers are measured
// against; the Makefile builds the same version (make bazel-remote).
const BazelRemoteVersion = "v2.6.2"

// ErrNoBazelRemote is returned by bazelRemoteBinary when the binary is
// not installed.
var ErrNoBazelRemote = errors.New("bench: bazel-remote binary not found: run 'make bazel-remote'")

// bazelRemoteBinary finds the bazel-remote binary: $BLOCKSTORE_BAZEL_REMOTE_BIN,
// $GOBIN/bazel-remote, $GOPATH/bin/bazel-remote, then $PATH.
func bazelRemoteBinary() (string, error) {
	if p := os.Getenv("BLOCKSTORE_BAZEL_REMOTE_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w (BLOCKSTORE_BAZEL_REMOTE_BIN: %w)", ErrNoBazelRemote, err)
		}
		return p, nil
	}
	var candidates []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "bazel-remote"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			candidates = append(candidates, filepath.Join(p, "bin", "bazel-remote"))
		}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	if p, err := exec.LookPath("bazel-remote"); err == nil {
		return p, nil
	}
	return "", ErrNoBazelRemote
}

// bazelRemote is the harness's bazel-remote process: a content-addressed
// cache over HTTP (PUT/GET /cas/<sha256>) that neither fsyncs nor verifies
// what it stores, the floor a blob store that does both is compared with.
// It stores uncompressed, in a directory the harness removes.
type bazelRemote struct {
	URL    string // http://127.0.0.1:port
	PID    int
	Client *http.Client

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startBazelRemote starts bin with its cache under dir. The caller must
// stop it.
func startBazelRemote(ctx context.Context, bin, dir string) (*bazelRemote, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &bazelRemote{URL: "http://" + addr, dir: dir, done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Join(dir, "cache"), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "bazel-remote.log"))
	if err != nil {
		return nil, err
	}
	// --max_size is in GiB: far above what a run stores, so that nothing
	// is evicted while it is measured.
	b.cmd = exec.Command(bin,
		"--dir", filepath.Join(dir, "cache"),
		"--max_size", "1000",
		"--storage_mode", "uncompressed",
		"--http_address", addr,
		"--grpc_address", "none",
		"--access_log_level", "none",
	)
	b.cmd.Env = cleanEnv()
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start bazel-remote: %w", err)
	}
	b.PID = b.cmd.Process.Pid
	go func() { _ = b.cmd.Wait(); logf.Close(); close(b.done) }()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.WriteBufferSize = 128 * kib
	tr.ReadBufferSize = 128 * kib
	b.Client = &http.Client{Transport: tr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := b.Client.Get(b.URL + "/status")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b, nil
			}
		}
		select {
		case <-b.done:
			log, _ := os.ReadFile(filepath.Join(dir, "bazel-remote.log"))
			return nil, fmt.Errorf("bench: bazel-remote exited at start: %s", lastLines(string(log), 20))
		case <-ctx.Done():
			b.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("bench: bazel-remote did not answer /status on %s within 60s", addr)
		}
	}
}

// Stop stops bazel-remote and removes its cache.
func (b *bazelRemote) Stop() {
	b.Client.CloseIdleConnections()
	select {
	case <-b.done:
	default:
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-b.PID, syscall.SIGKILL)
			<-b.done
		}
	}
	_ = os.RemoveAll(b.dir)
}

// sha256Of is the SHA-256 of c in hex, bazel-remote's name for it.
func sha256Of(c content) string {
	h := sha256.New()
	_, _ = io.Copy(h, c.reader())
	return hex.EncodeToString(h.Sum(nil))
}

// put stores c under its SHA-256 (sum).
func (b *bazelRemote) put(ctx context.Context, sum string, c content) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, b.URL+"/cas/"+sum, c.reader())
	if err != nil {
		return err
	}
	req.ContentLength = c.size
	resp, err := b.Client.Do(req)
	if err != nil {
		return fmt.Errorf("bench: bazel-remote PUT %s: %w", sum, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("bench: bazel-remote PUT %s: %s", sum, resp.Status)
	}
	return nil
}

// get reads the blob of sum with buf and returns its length.
func (b *bazelRemote) get(ctx context.Context, sum string, buf []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+"/cas/"+sum, nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: bazel-remote GET %s: %w", sum, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("bench: bazel-remote GET %s: %s", sum, resp.Status)
	}
	n, err := drain(resp.Body, buf)
	if err != nil {
		return n, fmt.Errorf("bench: bazel-remote GET %s: %w", sum, err)
	}
	return n, nil
}

// cpuSeconds is the user+system CPU time a process has used so far, from
// /proc/PID/stat (its own threads, not its children), and of it the
// system (kernel) time.
func cpuSeconds(pid int) (total, sys float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("bench: read stat of process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bench: /proc/%d/stat does not parse", pid)
	}
	f := strings.Fields(s[i+1:])
	// After ')': state is field 3, so utime (14) and stime (15) are at
	// indexes 11 and 12.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("bench: /proc/%d/stat does not parse", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bench: /proc/%d/stat does not parse", pid)
	}
	// USER_HZ is 100 on every Linux the harness runs on.
	return float64(ut+st) / 100, float64(st) / 100, nil
}

// cpuMeter sums the CPU time of a set of processes between two points.
type cpuMeter struct {
	pids            []int
	start, startSys float64
}

func newCPUMeter(pids ...int) (*cpuMeter, error) {
	m := &cpuMeter{pids: pids}
	var err error
	m.start, m.startSys, err = m.total()
	return m, err
}

func (m *cpuMeter) total() (sum, sys float64, err error) {
	for _, pid := range m.pids {
		t, s, err := cpuSeconds(pid)
		if err != nil {
			return 0, 0, err
		}
		sum += t
		sys += s
	}
	return sum, sys, nil
}

// used returns the CPU seconds used since the meter started.
func (m *cpuMeter) used() (float64, error) {
	s, _, err := m.usedSys()
	return s, err
}

// usedSys returns the CPU seconds used since the meter started, and of
// them the system (kernel) seconds.
func (m *cpuMeter) usedSys() (total, sys float64, err error) {
	now, nowSys, err := m.total()
	if err != nil {
		return 0, 0, err
	}
	return now - m.start, nowSys - m.startSys, nil
}

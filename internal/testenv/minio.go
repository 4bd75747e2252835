package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MinIOVersion is the MinIO server the Makefile builds from the Go module proxy.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// S3Server is a running S3 endpoint for tests.
type S3Server struct {
	Endpoint  string // host:port on 127.0.0.1
	AccessKey string
	SecretKey string
}

var (
	minioOnce   sync.Once
	minioServer *S3Server
	minioErr    error
)

// MinIOBinary finds the minio server: BLOCKSTORE_MINIO_BIN, $GOBIN,
// $GOPATH/bin, then PATH.
func MinIOBinary() (string, error) {
	if p := os.Getenv("BLOCKSTORE_MINIO_BIN"); p != "" {
		return p, nil
	}
	var candidates []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "minio"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(string(trimNL(out))) {
			candidates = append(candidates, filepath.Join(p, "bin", "minio"))
		}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("minio binary not found: run 'make minio' (go install github.com/minio/minio@%s)", MinIOVersion)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// MinIO returns the package's MinIO server, starting it on first use on a
// free 127.0.0.1 port with a temporary directory. It is stopped by Main.
// When MinIO cannot be started, tb is skipped (failed under CI).
func MinIO(tb testing.TB) *S3Server {
	tb.Helper()
	minioOnce.Do(func() { minioServer, minioErr = StartMinIO() })
	if minioErr != nil {
		Unavailable(tb, "MinIO", minioErr)
	}
	return minioServer
}

// StartMinIO starts a MinIO server whose life ends with Main (or the test
// process: the child gets SIGKILL when its parent dies).
func StartMinIO() (*S3Server, error) {
	bin, err := MinIOBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "blockstore-minio-")
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &S3Server{Endpoint: addr, AccessKey: "blockstoretest", SecretKey: "blockstoretest-secret"}
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", console, filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			// MinIO answers 200 before it serves S3 requests; until then it
			// says "x-minio-server-status: offline".
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				break
			}
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "minio.log"))
			stop()
			return nil, fmt.Errorf("minio exited at start: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("minio did not become ready on %s within 60s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	atExit(stop)
	return s, nil
}

// freePort returns a 127.0.0.1 address with a port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

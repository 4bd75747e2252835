package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/blockstore/blockstore/internal/testenv"
)

// minioServer is the harness's own MinIO process: the object store of the
// PostgreSQL + MinIO deployment and the MinIO-alone baseline. The harness
// starts its own (rather than testenv's) so that it can remove its data
// when it is done.
type minioServer struct {
	Endpoint  string // host:port on 127.0.0.1
	AccessKey string
	SecretKey string
	PID       int
	Client    *minio.Client

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startMinIO starts the MinIO server that testenv finds (make minio builds
// it) with its data under dir. The caller must stop it.
func startMinIO(ctx context.Context, dir string) (*minioServer, error) {
	bin, err := testenv.MinIOBinary()
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
	m := &minioServer{Endpoint: addr, AccessKey: "blockstorebench", SecretKey: "blockstorebench-secret", dir: dir, done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", console, filepath.Join(dir, "data"))
	m.cmd.Env = append(cleanEnv(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start minio: %w", err)
	}
	m.PID = m.cmd.Process.Pid
	go func() { _ = m.cmd.Wait(); logf.Close(); close(m.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-m.done:
			log, _ := os.ReadFile(filepath.Join(dir, "minio.log"))
			return nil, fmt.Errorf("bench: minio exited at start: %s", lastLines(string(log), 20))
		case <-ctx.Done():
			m.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, fmt.Errorf("bench: minio did not become ready on %s within 60s", addr)
		}
	}
	m.Client, err = minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), Secure: false})
	if err != nil {
		m.Stop()
		return nil, fmt.Errorf("bench: minio client: %w", err)
	}
	return m, nil
}

// Stop stops MinIO and removes its data.
func (m *minioServer) Stop() {
	select {
	case <-m.done:
	default:
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-m.PID, syscall.SIGKILL)
			<-m.done
		}
	}
	_ = os.RemoveAll(m.dir)
}

// newBucket creates a bucket with a fresh name that starts with prefix.
func (m *minioServer) newBucket(ctx context.Context, prefix string) (string, error) {
	name := prefix + "-" + randomHex(4)
	if err := m.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		return "", fmt.Errorf("bench: make bucket %s: %w", name, err)
	}
	return name, nil
}

// removeBucket deletes a bucket and everything in it (MinIO's force
// delete), so that the runs do not fill the disk.
func (m *minioServer) removeBucket(ctx context.Context, name string) error {
	err := m.Client.RemoveBucketWithOptions(ctx, name, minio.RemoveBucketOptions{ForceDelete: true})
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.Code == "NoSuchBucket" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bench: remove bucket %s: %w", name, err)
	}
	return nil
}

// freePort returns a 127.0.0.1 address whose port was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

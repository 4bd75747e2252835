package faults

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockstore/blockstore/client"
)

// TestStartOnAFullDisk: an embedded deployment whose whole data directory
// sits on a filesystem with no space left is restarted. serve must not
// loop on Pebble's background errors: it exits at once with an error that
// says the disk is full, changes nothing, and starts normally with the
// same data once space is freed. It needs the privilege to mount a tmpfs.
func TestStartOnAFullDisk(t *testing.T) {
	t.Parallel()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	data := filepath.Join(mnt, "data")
	s := startServer(t, nil, "--data", data)
	c := newClient(t, s.URL)
	col, err := c.CreateCollection(context.Background(), client.NewCollection{Name: "before the disk filled"})
	if err != nil {
		t.Fatal(err)
	}
	s.stop(t)

	// Something else takes every byte that is left.
	fill := filepath.Join(mnt, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for range 1 << 12 { // at most 256 MiB: the tmpfs is 8
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()

	cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0", "--data", data)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.add(sc.Text())
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("serve on a full disk exited with %v, want exit status 1:\n%s", err, logs.tail(20))
		}
	case <-time.After(20 * time.Second):
		// Still running: it must at least stop on SIGTERM.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			t.Errorf("serve on a full disk ran until SIGTERM instead of exiting:\n%s", logs.tail(20))
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("serve on a full disk ignored SIGTERM:\n%s", logs.tail(20))
		}
	}
	out := logs.tail(20)
	if !strings.Contains(out, "no space") && !strings.Contains(out, "full") {
		t.Errorf("the error does not say the disk is full:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n > 10 {
		t.Errorf("serve on a full disk wrote %d lines, want one clear error:\n%s", n, out)
	}

	// Space comes back: the same data serves again, intact.
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, nil, "--data", data)
	c = newClient(t, s.URL)
	if got, err := c.Collection(context.Background(), col.UUID, client.Latest); err != nil || got.Name != col.Name {
		t.Fatalf("after space was freed: %+v, %v", got, err)
	}
	s.stop(t)
}

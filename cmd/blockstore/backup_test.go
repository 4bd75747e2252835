package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/client"
)

// ack is a write the server acknowledged: a unit or asset version and its bytes.
type ack struct {
	asset   bool
	id      uuid.UUID
	version int64
	body    []byte
	started time.Time // when the request was sent
}

// runBlockstore runs the binary with args and returns its exit code and
// combined output.
func runBlockstore(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("blockstore %q: %v\n%s", args, err, out)
	}
	return 0, string(out)
}

// writers commit units, new unit versions and assets through the client
// until stop is closed (or a bound is reached) and record what was
// acknowledged, in order.
type writers struct {
	mu   sync.Mutex
	acks []ack
	stop chan struct{}
	wg   sync.WaitGroup
	errs chan error
}

func startWriters(t *testing.T, c *client.Client, col uuid.UUID, n int) *writers {
	w := &writers{stop: make(chan struct{}), errs: make(chan error, n)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	for i := range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			var mine []uuid.UUID // units this writer created
			for j := 0; j < 5000; j++ {
				select {
				case <-w.stop:
					return
				default:
				}
				var a ack
				var v *int64
				started := time.Now()
				switch {
				case j%4 == 3:
					body := make([]byte, 16<<10+rng.IntN(240<<10))
					for k := range body {
						body[k] = byte(rng.Uint32())
					}
					as, err := c.CreateAsset(ctx, client.NewAsset{Collection: col, Name: fmt.Sprintf("w%d/a%d", i, j)}, client.Content{Body: client.BytesBody(body)})
					if err != nil {
						w.errs <- err
						return
					}
					a, v = ack{asset: true, id: as.UUID, body: body}, as.Version
				case j%4 == 2 && len(mine) > 0:
					id := mine[rng.IntN(len(mine))]
					olx := fmt.Sprintf("<problem writer=%q n=%q>%x</problem>", fmt.Sprint(i), fmt.Sprint(j), rng.Uint64())
					u, _, err := c.NewUnitVersion(ctx, id, client.UnitChange{OLX: olx})
					if err != nil {
						w.errs <- err
						return
					}
					a, v = ack{id: u.UUID, body: []byte(olx)}, u.Version
				default:
					olx := fmt.Sprintf("<html writer=%q n=%q>%x</html>", fmt.Sprint(i), fmt.Sprint(j), rng.Uint64())
					u, err := c.CreateUnit(ctx, client.NewUnit{Collection: col, OLX: olx})
					if err != nil {
						w.errs <- err
						return
					}
					mine = append(mine, u.UUID)
					a, v = ack{id: u.UUID, body: []byte(olx)}, u.Version
				}
				if v == nil {
					w.errs <- fmt.Errorf("%s: no version in the answer", a.id)
					return
				}
				a.version, a.started = *v, started
				w.mu.Lock()
				w.acks = append(w.acks, a)
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// snapshot returns the writes acknowledged so far.
func (w *writers) snapshot() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ack(nil), w.acks...)
}

func (w *writers) end(t *testing.T) []ack {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	select {
	case err := <-w.errs:
		t.Fatalf("writer: %v", err)
	default:
	}
	return w.snapshot()
}

// readAck returns the bytes of the acknowledged version a, or an error.
func readAck(ctx context.Context, c *client.Client, a ack) ([]byte, error) {
	var d *client.Download
	var err error
	if a.asset {
		d, err = c.AssetContent(ctx, a.id, client.Version(a.version), client.GetOptions{})
	} else {
		d, err = c.UnitOLX(ctx, a.id, client.Version(a.version), client.GetOptions{})
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return io.ReadAll(d.Body)
}

// TestBackupUnderLoad: writers commit through the API while `blockstore
// backup --server` runs; the backup is restored into a fresh data
// directory, `blockstore verify` passes on it, and a server on it gives
// back, byte for byte, every write acknowledged before the backup began.
// Writes sent after the backup ended are not in it.
func TestBackupUnderLoad(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	s := startServer(t, "--data", data)
	c, err := client.New(s.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "backup under load"})
	if err != nil {
		t.Fatal(err)
	}
	// Larger assets, so that the stream takes a while.
	var seed []ack
	for i := range 8 {
		body := bytes.Repeat([]byte(fmt.Sprintf("seed %d ", i)), (1<<20)/7)
		a, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: fmt.Sprintf("seed-%d", i)}, client.Content{Body: client.BytesBody(body)})
		if err != nil {
			t.Fatal(err)
		}
		seed = append(seed, ack{asset: true, id: a.UUID, version: *a.Version, body: body})
	}

	w := startWriters(t, c, col.UUID, 4)
	for deadline := time.Now().Add(30 * time.Second); len(w.snapshot()) < 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			w.end(t)
			t.Fatal("the writers acknowledged fewer than 100 writes in 30s")
		}
	}
	before := append(seed, w.snapshot()...)

	backup := filepath.Join(root, "backup")
	code, out := runBlockstore(t, 2*time.Minute, "backup", backup, "--server", s.URL)
	ended := time.Now()
	during := len(w.snapshot()) + len(seed) - len(before)
	// A little more load after the backup: none of it may be in it.
	time.Sleep(100 * time.Millisecond)
	all := append(seed, w.end(t)...)
	var later []ack
	for _, a := range all {
		if a.started.After(ended) {
			later = append(later, a)
		}
	}
	if code != 0 {
		t.Fatalf("backup under load: exit %d\n%s", code, out)
	}
	t.Logf("backup:\n%s", out)
	t.Logf("%d writes acknowledged before the backup, %d while it ran, %d sent after it ended", len(before), during, len(later))
	if during == 0 {
		t.Error("no write was acknowledged while the backup ran: it was not under load")
	}
	if _, err := os.Stat(filepath.Join(backup, "MANIFEST.json")); err != nil {
		t.Fatal(err)
	}

	restored := filepath.Join(root, "restored")
	if code, out := runBlockstore(t, 2*time.Minute, "restore", backup, "--data", restored); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	if code, out := runBlockstore(t, 2*time.Minute, "verify", "--data", restored); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("verify of the restored deployment: exit %d\n%s", code, out)
	}

	s2 := startServer(t, "--data", restored)
	c2, err := client.New(s2.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range before {
		got, err := readAck(ctx, c2, a)
		if err != nil {
			t.Fatalf("%s version %d, acknowledged before the backup: %v", a.id, a.version, err)
		}
		if !bytes.Equal(got, a.body) {
			t.Fatalf("%s version %d: %d bytes differ from the %d acknowledged", a.id, a.version, len(got), len(a.body))
		}
	}
	// Writes sent after the backup ended are not in it.
	for _, a := range later {
		if _, err := readAck(ctx, c2, a); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("%s version %d, sent after the backup ended: %v, want not found", a.id, a.version, err)
		}
	}
	t.Logf("read back %d writes from before the backup; %d sent after it are absent", len(before), len(later))
}

// TestBackupRefusals: a backup into a directory that is not empty, a backup
// on the stores while a server holds them, a restore into a data directory
// that is not empty or of a backup that did not finish: each is refused and
// changes nothing. A backup on the stores with no server works.
func TestBackupRefusals(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	s := startServer(t, "--data", data)
	c, err := client.New(s.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "refusals"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, OLX: "<p>kept</p>"})
	if err != nil {
		t.Fatal(err)
	}

	full := filepath.Join(root, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "mine"), []byte("mine"), 0o644)
	if code, out := runBlockstore(t, time.Minute, "backup", full, "--server", s.URL); code != exitFailure || !strings.Contains(out, "not empty") {
		t.Errorf("backup into a directory that is not empty: exit %d\n%s", code, out)
	}
	offline := filepath.Join(root, "offline")
	if code, out := runBlockstore(t, time.Minute, "backup", offline, "--data", data); code != exitFailure || !strings.Contains(out, "in use by another process") {
		t.Errorf("backup on the stores while serve runs: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(offline); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused backup left %s", offline)
	}

	// A backup through the server, and copies of it cut short.
	backup := filepath.Join(root, "backup")
	if code, out := runBlockstore(t, time.Minute, "backup", backup, "--server", s.URL); code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	incomplete := filepath.Join(root, "incomplete")
	if err := os.CopyFS(incomplete, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(incomplete, "MANIFEST.json"))
	target := filepath.Join(root, "target")
	if code, out := runBlockstore(t, time.Minute, "restore", incomplete, "--data", target); code != exitFailure || !strings.Contains(out, "did not finish") {
		t.Errorf("restore of a backup without its manifest: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused restore created %s", target)
	}
	if code, out := runBlockstore(t, time.Minute, "restore", backup, "--data", full); code != exitFailure || !strings.Contains(out, "not empty") {
		t.Errorf("restore into a directory that is not empty: exit %d\n%s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(full, "mine")); err != nil || string(b) != "mine" {
		t.Errorf("a refused restore changed the target: %q, %v", b, err)
	}
	if code, out := runBlockstore(t, time.Minute, "restore", backup, "--data", data); code != exitFailure || !strings.Contains(out, "not empty") {
		t.Errorf("restore into the data directory of a running server: exit %d\n%s", code, out)
	}

	// With the server stopped, a backup on the stores works and restores.
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if code, out := runBlockstore(t, time.Minute, "backup", offline, "--data", data, "--json"); code != 0 || !strings.Contains(out, `"format": "blockstore-backup/1"`) {
		t.Fatalf("backup on the stores: exit %d\n%s", code, out)
	}
	if code, out := runBlockstore(t, time.Minute, "restore", offline, "--data", target); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	if code, out := runBlockstore(t, time.Minute, "verify", "--data", target); code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	s2 := startServer(t, "--data", target)
	c2, _ := client.New(s2.URL, client.Options{})
	if got, err := readAck(ctx, c2, ack{id: u.UUID, version: 1}); err != nil || string(got) != "<p>kept</p>" {
		t.Fatalf("unit after an offline backup and restore: %q, %v", got, err)
	}
}

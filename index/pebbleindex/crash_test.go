package pebbleindex

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// crashDirEnv names the data directory of the child process of
// TestKilledWriterKeepsAcknowledged.
const crashDirEnv = "PEBBLEINDEX_CRASH_DIR"

// TestKilledWriterKeepsAcknowledged runs 8 writers in a child process,
// kills it (SIGKILL) after a number of acknowledged commits, and checks that
// every commit Update acknowledged is in the reopened index: grouped syncs
// cover every batch they acknowledge.
func TestKilledWriterKeepsAcknowledged(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child process")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const acks = 300
	var acked []uuid.UUID
	lines := bufio.NewScanner(out)
	for len(acked) < acks && lines.Scan() {
		id, ok := strings.CutPrefix(lines.Text(), "ack ")
		if !ok {
			continue
		}
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("child wrote %q", lines.Text())
		}
		acked = append(acked, u)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < acks {
		t.Fatalf("child acknowledged %d commits before it ended, want %d", len(acked), acks)
	}

	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range acked {
		if _, err := s.Unit(ctx, index.Latest(id)); err != nil {
			t.Fatalf("acknowledged unit %s after the kill: %v", id, err)
		}
	}
}

// TestCrashChild is the child process of TestKilledWriterKeepsAcknowledged:
// it commits units from 8 writers, printing "ack <uuid>" once Update has
// returned, until it is killed (or has written 20,000).
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only as the child of TestKilledWriterKeepsAcknowledged")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h := cas.Sum([]byte("crash"))
	if err := s.LoadBlobs(ctx, []index.Blob{{Hash: h, Size: 5}}); err != nil {
		t.Fatal(err)
	}
	var coll uuid.UUID
	err = s.Update(ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{})
		coll = c.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2500 {
				var u index.Unit
				err := s.Update(ctx, func(tx index.Tx) (err error) {
					u, err = tx.CreateUnit(index.NewUnit{Collection: coll, Hash: h})
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Printf("ack %s\n", u.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

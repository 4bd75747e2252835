package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockstore/blockstore/client"
)

// TestChangesCommand prints the feed as JSON lines, then follows it: a
// change committed while `changes --follow` waits is printed at once.
func TestChangesCommand(t *testing.T) {
	s := startServer(t, "--data", filepath.Join(t.TempDir(), "data"))
	bin, _ := buildBinary()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(s.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "followed"})
	if err != nil {
		t.Fatal(err)
	}

	out, err := exec.CommandContext(ctx, bin, "changes", "--server", s.URL, "--json").Output()
	if err != nil {
		t.Fatalf("changes --json: %v", err)
	}
	var ch client.Change
	if err := json.Unmarshal(bytes.TrimSpace(out), &ch); err != nil {
		t.Fatalf("changes --json printed %q: %v", out, err)
	}
	if ch.UUID != col.UUID || ch.Event != "created" || ch.Kind != "collection" || ch.Version == nil || *ch.Version != 1 {
		t.Fatalf("changes --json: %+v, want the collection's creation", ch)
	}

	follow := exec.CommandContext(ctx, bin, "changes", "--server", s.URL, "--follow", "--after", ch.Cursor)
	follow.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = follow.Process.Signal(syscall.SIGTERM)
		_ = follow.Wait()
	}()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	up, err := c.UpdateCollection(ctx, col.UUID, client.CollectionPatch{Description: ptr("followed now")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-lines:
		if !strings.Contains(line, " updated ") || !strings.Contains(line, up.UUID.String()) || !strings.Contains(line, " 2 ") {
			t.Fatalf("changes --follow printed %q, want the update to version 2", line)
		}
	case <-ctx.Done():
		t.Fatal("changes --follow printed nothing after a commit")
	}

	// A malformed cursor is the server's 400, and a non-zero exit.
	if err := exec.CommandContext(ctx, bin, "changes", "--server", s.URL, "--after", "nonsense").Run(); err == nil {
		t.Error("changes --after nonsense succeeded")
	}
}

func ptr[T any](v T) *T { return &v }

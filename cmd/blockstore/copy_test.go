package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/internal/testenv"
)

// TestCopyCommand moves an embedded deployment to PostgreSQL + MinIO as the
// README tells: refused while serve holds the data directory; after serve
// stops, the copy runs, a second run creates nothing, verify passes on the
// destination, and serve on the destination answers as the source did.
func TestCopyCommand(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	s := startServer(t, "--data", data)
	c, err := client.New(s.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "moving"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: "a.xml", OLX: "<p>one</p>"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.NewUnitVersion(ctx, u.UUID, client.UnitChange{OLX: "<p>two</p>"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutUnitDraft(ctx, u.UUID, client.UnitChange{OLX: "<p>draft</p>"}); err != nil {
		t.Fatal(err)
	}
	before := get(t, s.URL+"/api/v1/units/"+u.UUID.String()+"/versions")

	db := testenv.NewDatabase(t)
	s3 := testenv.MinIO(t)
	dest := []string{"--database-url", db, "--s3-endpoint", s3.Endpoint, "--s3-bucket", "copy-cli", "--s3-insecure",
		"--s3-access-key", s3.AccessKey, "--s3-secret-key", s3.SecretKey}
	bin, _ := buildBinary()
	copyRun := func() (map[string]any, string, error) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, bin, append([]string{"copy", "--from-data", data, "--json"}, dest...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var sum map[string]any
		if err == nil {
			if jerr := json.Unmarshal(out, &sum); jerr != nil {
				t.Fatalf("copy --json: %v\n%s", jerr, out)
			}
		}
		return sum, stderr.String(), err
	}

	if _, stderr, err := copyRun(); err == nil || !strings.Contains(stderr, "stop its blockstore serve") {
		t.Fatalf("copy while serve runs: %v\n%s", err, stderr)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	sum, stderr, err := copyRun()
	if err != nil {
		t.Fatalf("copy: %v\n%s", err, stderr)
	}
	if sum["entities_created"] != 2.0 || sum["versions"] != 4.0 || sum["blobs"] != 3.0 {
		t.Fatalf("copy summary: %v", sum)
	}
	if strings.Contains(stderr, s3.SecretKey) || strings.Contains(sum["destination"].(string), s3.SecretKey) {
		t.Fatalf("copy printed a secret:\n%s\n%v", stderr, sum)
	}
	sum, stderr, err = copyRun()
	if err != nil {
		t.Fatalf("second copy: %v\n%s", err, stderr)
	}
	if sum["entities_created"] != 0.0 || sum["versions"] != 0.0 || sum["blobs"] != 0.0 || sum["blobs_skipped"] != 3.0 {
		t.Fatalf("second copy summary: %v", sum)
	}

	if out, err := exec.Command(bin, append([]string{"verify"}, dest...)...).CombinedOutput(); err != nil {
		t.Fatalf("verify on the destination: %v\n%s", err, out)
	}
	moved := startServer(t, dest...)
	if after := get(t, moved.URL+"/api/v1/units/"+u.UUID.String()+"/versions"); !sameUpToMicroseconds(before, after) {
		t.Fatalf("history after the move:\n%s\nbefore:\n%s", after, before)
	}
	if got := get(t, moved.URL+"/api/v1/units/"+u.UUID.String()+"/versions/draft/olx"); got != "<p>draft</p>" {
		t.Fatalf("draft OLX after the move: %q", got)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v\n%s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// sameUpToMicroseconds compares two JSON answers whose times an embedded
// deployment gives in nanoseconds and PostgreSQL in microseconds.
func sameUpToMicroseconds(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	cut(x)
	cut(y)
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

func cut(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "created_at" {
				if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
					x[k] = tm.Truncate(time.Microsecond).UTC().Format(time.RFC3339Nano)
				}
				continue
			}
			cut(e)
		}
	case []any:
		for _, e := range x {
			cut(e)
		}
	}
}

// TestCopyUsage: mistakes on the command line are usage errors, and help
// never shows a secret the environment holds.
func TestCopyUsage(t *testing.T) {
	t.Setenv("BLOCKSTORE_FROM_S3_SECRET_KEY", "hunter2-secret")
	t.Setenv("BLOCKSTORE_FROM_DATABASE_URL", "")
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"copy", "--data", dir}, exitUsage, "give the source"},
		{[]string{"copy", "--from-data", dir, "--data", dir + "/."}, exitUsage, "share the data directory"},
		{[]string{"copy", "--from-data", dir, "extra"}, exitUsage, "unexpected argument"},
		{[]string{"copy", "-h"}, exitOK, "--from-s3-endpoint"},
	}
	for _, tt := range tests {
		var out strings.Builder
		code := run(t.Context(), tt.args, &out, &out)
		if code != tt.code || !strings.Contains(out.String(), tt.want) || strings.Contains(out.String(), "hunter2") {
			t.Errorf("blockstore %q: exit %d, want %d; output %q should contain %q and no secret", tt.args, code, tt.code, out.String(), tt.want)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/app"
	"github.com/blockstore/blockstore/internal/testenv"
)

// The operator mistakes of the store identity check, each run through the
// real binary against a real production deployment (PostgreSQL + MinIO)
// that keeps serving; each ends by reading every blob back from it.

// runWithEnv runs the binary with args and exactly the BLOCKSTORE_*
// variables of env (the test's own are dropped), and returns its exit code
// and combined output.
func runWithEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BLOCKSTORE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("blockstore %q did not end within 2 minutes (it should have refused at once):\n%s", args, out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("blockstore %q: %v\n%s", args, err, out)
	}
	return 0, string(out)
}

// production is a PostgreSQL + MinIO deployment served by the real binary.
type production struct {
	db, bucket, prefix string
	s3                 *testenv.S3Server
	srv                *server
	blobs              []cas.Hash
}

// s3Env is the bucket half of the configuration as an operator's shell
// holds it.
func (p *production) s3Env() []string {
	return []string{
		"BLOCKSTORE_S3_ENDPOINT=" + p.s3.Endpoint, "BLOCKSTORE_S3_BUCKET=" + p.bucket, "BLOCKSTORE_S3_PREFIX=" + p.prefix,
		"BLOCKSTORE_S3_INSECURE=true", "BLOCKSTORE_S3_ACCESS_KEY=" + p.s3.AccessKey, "BLOCKSTORE_S3_SECRET_KEY=" + p.s3.SecretKey,
	}
}

func (p *production) env() []string { return append(p.s3Env(), "BLOCKSTORE_DATABASE_URL="+p.db) }

func (p *production) flags() []string {
	return []string{"--database-url", p.db, "--s3-endpoint", p.s3.Endpoint, "--s3-bucket", p.bucket, "--s3-prefix", p.prefix,
		"--s3-insecure", "--s3-access-key", p.s3.AccessKey, "--s3-secret-key", p.s3.SecretKey}
}

func (p *production) config() app.Config {
	return app.Config{DatabaseURL: p.db, S3: s3store.Config{Endpoint: p.s3.Endpoint, Bucket: p.bucket, Prefix: p.prefix,
		AccessKey: p.s3.AccessKey, SecretKey: p.s3.SecretKey, Insecure: true, CreateBucket: true}}
}

// newProduction starts a deployment on a fresh database and bucket and
// stores a few blobs in it.
func newProduction(t *testing.T, s3 *testenv.S3Server, bucket, prefix string) *production {
	t.Helper()
	p := &production{db: testenv.NewDatabase(t), bucket: bucket, prefix: prefix, s3: s3}
	p.srv = startServer(t, p.flags()...)
	for i := range 4 {
		p.blobs = append(p.blobs, putBlob(t, p.srv.URL, fmt.Appendf(nil, "blob %d of %s/%s", i, bucket, prefix)))
	}
	return p
}

// allServed checks that the deployment still serves every blob it stored.
func (p *production) allServed(t *testing.T) {
	t.Helper()
	for _, h := range p.blobs {
		if st := blobStatus(t, p.srv.URL, h); st != 200 {
			t.Errorf("blob %s: status %d after the refused commands, want 200", h, st)
		}
	}
}

// refused wants exit code 1 and every one of wants in the output.
func refused(t *testing.T, code int, out string, wants ...string) {
	t.Helper()
	if code != exitFailure {
		t.Fatalf("exit code %d, want %d (refused); output:\n%s", code, exitFailure, out)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestForgottenDatabaseURL: BLOCKSTORE_S3_* set, BLOCKSTORE_DATABASE_URL
// forgotten. gc and serve refuse and name the likely mistake; even with
// the flag that allows an embedded index over S3, the identity check
// refuses the new embedded index over the used bucket.
func TestForgottenDatabaseURL(t *testing.T) {
	p := newProduction(t, testenv.MinIO(t), "forgot", "")
	data := filepath.Join(t.TempDir(), "blockstore-data")
	for _, args := range [][]string{
		{"gc", "--grace", "0s", "--data", data},
		{"serve", "--addr", "127.0.0.1:0", "--data", data},
		{"verify", "--data", data},
	} {
		code, out := runWithEnv(t, p.s3Env(), args...)
		refused(t, code, out, "--database-url", "BLOCKSTORE_DATABASE_URL", "--allow-embedded-index-with-s3")
	}
	code, out := runWithEnv(t, p.s3Env(), "gc", "--grace", "0s", "--data", data, "--allow-embedded-index-with-s3")
	refused(t, code, out, "the index is new and the blob store belongs to another deployment", "pebble:"+filepath.Join(data, "index"))
	if _, err := os.Stat(filepath.Join(data, "index")); !os.IsNotExist(err) {
		t.Errorf("the refused gc created an index in %s: %v", data, err)
	}
	p.allServed(t)
}

// TestFreshDatabaseOverUsedBucket: a --database-url naming a new, empty
// database over the used bucket. serve, gc and migrate refuse, and the
// database is left without a schema.
func TestFreshDatabaseOverUsedBucket(t *testing.T) {
	p := newProduction(t, testenv.MinIO(t), "fresh-db", "")
	fresh := testenv.NewDatabase(t)
	env := append(p.s3Env(), "BLOCKSTORE_DATABASE_URL="+fresh)
	for _, args := range [][]string{
		{"serve", "--addr", "127.0.0.1:0"},
		{"gc", "--grace", "0s"},
		{"migrate"},
	} {
		code, out := runWithEnv(t, env, args...)
		refused(t, code, out, "the index is new and the blob store belongs to another deployment", "s3:"+p.s3.Endpoint+"/fresh-db/", "blockstore identity bind --force")
		if strings.Contains(out, p.s3.SecretKey) {
			t.Errorf("%s printed the S3 secret key", args[0])
		}
	}
	if ok, err := pgindex.Fresh(context.Background(), fresh); err != nil || !ok {
		t.Errorf("the refused commands migrated the fresh database: fresh %v, %v", ok, err)
	}
	p.allServed(t)
}

// TestSecondDeploymentOverSameBucket: another deployment's index (a second
// database that has its own bucket, and a second embedded data directory)
// pointed at this bucket and prefix is refused.
func TestSecondDeploymentOverSameBucket(t *testing.T) {
	s3 := testenv.MinIO(t)
	p := newProduction(t, s3, "first", "shared/")
	q := newProduction(t, s3, "second", "")

	// The second database over the first bucket.
	env := append(p.s3Env(), "BLOCKSTORE_DATABASE_URL="+q.db)
	code, out := runWithEnv(t, env, "gc", "--grace", "0s")
	refused(t, code, out, "belong to different deployments")

	// A second embedded data directory (allowed over S3) that stored
	// blobs of its own, pointed at the first bucket and prefix.
	other := append(q.s3Env()[:0:0], q.s3Env()...)
	other = append(other, "BLOCKSTORE_ALLOW_EMBEDDED_INDEX_WITH_S3=true")
	data := filepath.Join(t.TempDir(), "data")
	for i, kv := range other {
		if strings.HasPrefix(kv, "BLOCKSTORE_S3_PREFIX=") {
			other[i] = "BLOCKSTORE_S3_PREFIX=embedded/"
		}
	}
	srv := startServerEnv(t, other, "--data", data)
	putBlob(t, srv.URL, []byte("a blob of the embedded deployment"))
	srv.stop(t)
	code, out = runWithEnv(t, append(p.s3Env(), "BLOCKSTORE_ALLOW_EMBEDDED_INDEX_WITH_S3=true"), "gc", "--grace", "0s", "--data", data)
	refused(t, code, out, "belong to different deployments")

	p.allServed(t)
	q.allServed(t)
}

// TestWrongPrefix: the right database with a wrong --s3-prefix (an empty
// key space) is refused, then the right prefix works.
func TestWrongPrefix(t *testing.T) {
	p := newProduction(t, testenv.MinIO(t), "prefix", "right/")
	wrong := append(p.env(), "BLOCKSTORE_S3_PREFIX=wrong/")
	for _, args := range [][]string{{"gc", "--grace", "0s"}, {"serve", "--addr", "127.0.0.1:0"}} {
		code, out := runWithEnv(t, wrong, args...)
		refused(t, code, out, "the index names blobs and the blob store holds none", "/prefix/wrong/")
	}
	if code, out := runWithEnv(t, p.env(), "gc", "--dry-run"); code != 0 {
		t.Fatalf("gc --dry-run with the right prefix: %d\n%s", code, out)
	}
	p.allServed(t)
}

// showIdentity runs `identity show --json`.
func showIdentity(t *testing.T, env []string, args ...string) app.IdentityReport {
	t.Helper()
	code, out := runWithEnv(t, env, append([]string{"identity", "show", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("identity show: %d\n%s", code, out)
	}
	var rep app.IdentityReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("identity show --json: %v\n%s", err, out)
	}
	return rep
}

// TestUpgradeBindsOnOpen: deployments from before store ids (simulated by
// removing the id from both sides) are bound by the next command that
// opens them, without a manual step; `identity bind --force` resolves a
// refusal the operator knows to be wrong.
func TestUpgradeBindsOnOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("production", func(t *testing.T) {
		p := newProduction(t, testenv.MinIO(t), "upgrade", "")
		if rep := showIdentity(t, p.env()); !rep.Bound {
			t.Fatalf("a new deployment is not bound: %+v", rep)
		}
		idx, err := pgindex.Open(ctx, p.db, index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer idx.Close()
		if err := idx.ReplaceStoreID(ctx, ""); err != nil {
			t.Fatal(err)
		}
		bs, err := s3store.Open(ctx, p.config().S3)
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.SetStoreID(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if rep := showIdentity(t, p.env()); rep.IndexID != "" || rep.BlobsID != "" {
			t.Fatalf("ids not removed: %+v", rep)
		}
		if code, out := runWithEnv(t, p.env(), "verify"); code != 0 {
			t.Fatalf("verify: %d\n%s", code, out)
		}
		if rep := showIdentity(t, p.env()); !rep.Bound {
			t.Fatalf("not bound by verify: %+v", rep)
		}

		// Ids that differ: refused until the operator forces the binding.
		if err := bs.SetStoreID(ctx, "restored-elsewhere"); err != nil {
			t.Fatal(err)
		}
		code, out := runWithEnv(t, p.env(), "gc", "--dry-run")
		refused(t, code, out, "(store id restored-elsewhere) belong to different deployments")
		if code, out := runWithEnv(t, p.env(), "identity", "bind"); code != exitUsage {
			t.Fatalf("identity bind without --force: %d, want %d\n%s", code, exitUsage, out)
		}
		if code, out := runWithEnv(t, p.env(), "identity", "bind", "--force"); code != 0 || !strings.Contains(out, "bound") {
			t.Fatalf("identity bind --force: %d\n%s", code, out)
		}
		if rep := showIdentity(t, p.env()); !rep.Bound || rep.IndexID != "restored-elsewhere" {
			t.Fatalf("after bind --force: %+v", rep)
		}
		if code, out := runWithEnv(t, p.env(), "gc", "--dry-run"); code != 0 {
			t.Fatalf("gc after bind --force: %d\n%s", code, out)
		}
		p.allServed(t)
	})
	t.Run("embedded", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		srv := startServer(t, "--data", data)
		var hs []cas.Hash
		for i := range 3 {
			hs = append(hs, putBlob(t, srv.URL, fmt.Appendf(nil, "embedded blob %d", i)))
		}
		srv.stop(t)
		idx, err := pebbleindex.Open(filepath.Join(data, "index"), pebbleindex.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := idx.ReplaceStoreID(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if err := idx.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(data, "blobs", "STORE-ID")); err != nil {
			t.Fatal(err)
		}
		if rep := showIdentity(t, nil, "--data", data); rep.IndexID != "" || rep.BlobsID != "" || !rep.IndexHoldsBlobs {
			t.Fatalf("ids not removed: %+v", rep)
		}
		srv = startServer(t, "--data", data)
		for _, h := range hs {
			if st := blobStatus(t, srv.URL, h); st != 200 {
				t.Errorf("blob %s: %d after the upgrade", h, st)
			}
		}
		srv.stop(t)
		if rep := showIdentity(t, nil, "--data", data); !rep.Bound {
			t.Fatalf("not bound by serve: %+v", rep)
		}
	})
}

// startServerEnv is startServer with BLOCKSTORE_* variables set.
func startServerEnv(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return startServer(t, args...)
}

// stop ends the server with SIGTERM and waits for it.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30s:\n%s", s.logs.String())
	}
}

func TestIdentityUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"identity"}, exitUsage, "want a subcommand"},
		{[]string{"identity", "nope"}, exitUsage, "want a subcommand"},
		{[]string{"identity", "show", "extra"}, exitUsage, "unexpected arguments"},
		{[]string{"identity", "bind"}, exitUsage, "needs --force"},
		{[]string{"help"}, exitOK, "identity"},
	} {
		var out strings.Builder
		code := run(t.Context(), tt.args, &out, &out)
		if code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("blockstore %q: exit %d, want %d; output %q should contain %q", tt.args, code, tt.code, out.String(), tt.want)
		}
	}
}

package faults

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/internal/app"
)

// TestCrashEmbedded kills the embedded deployment (Pebble and a blob
// directory) with SIGKILL while writers upload and commit, restarts it over
// the same data directory, and checks what survived, several times.
func TestCrashEmbedded(t *testing.T) {
	t.Parallel()
	crashRounds(t, embeddedDeployment(t), 4, writerOptions{LargeEvery: 5, LargeSize: 3 << 20, MaxOps: 300})
}

// TestCrashEmbeddedInlineOff does the same with every OLX in the blob
// directory (--inline-max-bytes 0), as before inline blobs; the tests above
// run with the default, where the writers' OLX (under 64 KiB) is inline.
func TestCrashEmbeddedInlineOff(t *testing.T) {
	t.Parallel()
	d := embeddedDeployment(t)
	d.env = append(d.env, "BLOCKSTORE_INLINE_MAX_BYTES=0")
	crashRounds(t, d, 2, writerOptions{LargeEvery: 5, LargeSize: 3 << 20, MaxOps: 300})
}

// TestCrashProduction does the same on PostgreSQL and MinIO. Large bodies
// are over s3store.SmallBlobSize, so that uploads stream to temporary keys
// and multipart uploads when the kill comes.
func TestCrashProduction(t *testing.T) {
	t.Parallel()
	crashRounds(t, productionDeployment(t), 3, writerOptions{LargeEvery: 5, LargeSize: 6 << 20, MaxOps: 300})
}

const crashWriters = 4

func crashRounds(t *testing.T, d deployment, rounds int, opt writerOptions) {
	ctx := context.Background()
	j := newJournal()
	seed := rand.Uint64()
	t.Logf("%s: seed %#x", d.name, seed)
	for round := range rounds {
		s := startServer(t, d.env, d.args...)
		c := newClient(t, s.URL)
		if round > 0 {
			checkAfterRestart(ctx, t, d, c, j, round)
		}
		// Writers run until the kill; the first error ends each, and
		// errors before the kill fail the test.
		var killing atomic.Bool
		errs := &errorsCollector{}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		stop := make(chan struct{})
		before := j.acks.Load()
		wait := load(c, j, crashWriters, seed+uint64(round)<<32, opt, stop, func(err error) {
			if !killing.Load() {
				errs.add(err)
			}
		})
		go func() {
			<-wctx.Done()
			close(stop)
		}()
		if err := waitAcks(j, before, 3*crashWriters, time.Minute); err != nil {
			cancel()
			wait()
			errs.report(t, "before the kill")
			t.Fatalf("round %d: %v", round, err)
		}
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		killing.Store(true)
		s.kill(t)
		attempted := wait()
		cancel()
		errs.report(t, "before the kill")
		b, av, uv := j.counts()
		t.Logf("round %d: killed after %d writes attempted; acknowledged so far: %d blobs, %d asset versions, %d unit versions; %s",
			round, attempted, b, av, uv, leftovers(t, d))
		if d.production() {
			// Replicas keep no state: the stores are checkable at once,
			// with no server running.
			verifyStores(t, d)
		}
		if t.Failed() {
			return
		}
	}

	// The last restart: check, sweep, check again, stop, verify at rest.
	s := startServer(t, d.env, d.args...)
	c := newClient(t, s.URL)
	checkAfterRestart(ctx, t, d, c, j, rounds)
	grace := time.Nanosecond
	rep, err := c.GC(ctx, client.GCRequest{Grace: grace})
	if err != nil {
		t.Fatalf("sweep after the crashes: %v", err)
	}
	t.Logf("sweep with no grace after %d crashes: %d blobs deleted, %d kept", rounds, rep.BlobsDeleted, rep.BlobsKept)
	// Blobs that only PUT stored, which nothing references, may go now.
	j.referencedOnly()
	checkJournal(ctx, t, c, j)
	if n := checkListed(ctx, t, c); n == 0 {
		t.Error("nothing listed after the sweep")
	}
	s.stop(t)
	if d.production() {
		checkS3Temp(t, d)
	}
	verifyStores(t, d)
}

// checkAfterRestart checks a server restarted after a kill: temporary data
// is gone, every acknowledged write is there, nothing listed is
// half-visible, and it is ready.
func checkAfterRestart(ctx context.Context, t *testing.T, d deployment, c *client.Client, j *journal, round int) {
	t.Helper()
	if err := c.Readyz(ctx); err != nil {
		t.Errorf("round %d: /readyz after restart: %v", round, err)
	}
	if !d.production() {
		tmp := filepath.Join(d.dataDir, "blobs", "tmp")
		entries, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			t.Errorf("round %d: %d temporary files left in %s after restart, e.g. %s", round, len(entries), tmp, entries[0].Name())
		}
	}
	checkJournal(ctx, t, c, j)
	if n := checkListed(ctx, t, c); n == 0 {
		t.Errorf("round %d: nothing listed after restart", round)
	}
}

// leftovers describes the temporary data a kill left behind.
func leftovers(t *testing.T, d deployment) string {
	t.Helper()
	if !d.production() {
		entries, err := os.ReadDir(filepath.Join(d.dataDir, "blobs", "tmp"))
		if err != nil {
			t.Fatal(err)
		}
		return "temporary files left: " + strconv.Itoa(len(entries))
	}
	tmp := d.objects(t, "tmp/")
	uploads := incompleteUploads(t, d)
	return "temporary keys left: " + strconv.Itoa(len(tmp)) + ", unfinished multipart uploads: " + strconv.Itoa(len(uploads))
}

// incompleteUploads lists the unfinished multipart uploads of the bucket,
// as "key#uploadID".
func incompleteUploads(t *testing.T, d deployment) []string {
	t.Helper()
	var keys []string
	for u := range d.minioClient(t).ListIncompleteUploads(context.Background(), d.bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list unfinished uploads: %v", u.Err)
		}
		keys = append(keys, u.Key+"#"+u.UploadID)
	}
	return keys
}

// realUploads keeps the uploads whose parts can still be listed: MinIO's
// listing may name an upload that is already gone for a moment.
func realUploads(t *testing.T, d deployment, uploads []string) []string {
	t.Helper()
	core := minio.Core{Client: d.minioClient(t)}
	var out []string
	for _, u := range uploads {
		key, id, _ := strings.Cut(u, "#")
		_, err := core.ListObjectParts(context.Background(), d.bucket, key, id, 0, 1000)
		if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
			t.Logf("listed upload %s is gone (a stale listing)", u)
			continue
		}
		out = append(out, u)
	}
	return out
}

// checkS3Temp removes what kills left in the bucket's temporary space with
// the cleanup a sweep runs (s3store's CleanTemp; a sweep passes it an age of
// at least a minute, so that it never takes an upload under way: here no
// server runs, and age 0 takes everything), then checks that nothing is left.
func checkS3Temp(t *testing.T, d deployment) {
	t.Helper()
	ctx := context.Background()
	a, err := app.Open(ctx, d.config())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	items, bytes, err := a.Blobs.CleanTemp(ctx, 0)
	if err != nil {
		t.Fatalf("clean temporary data: %v", err)
	}
	t.Logf("cleanup removed %d temporary items (%d bytes)", items, bytes)
	if keys := d.objects(t, "tmp/"); len(keys) > 0 {
		t.Errorf("%d temporary keys left after the cleanup, e.g. %s", len(keys), keys[0])
	}
	if ups := realUploads(t, d, incompleteUploads(t, d)); len(ups) > 0 {
		t.Errorf("%d unfinished multipart uploads left after the cleanup, e.g. %s", len(ups), ups[0])
	}
}

// verifyStores runs `blockstore verify` on the deployment's stores (no
// server may hold an embedded data directory): nothing corrupt, nothing
// missing.
func verifyStores(t *testing.T, d deployment) {
	t.Helper()
	code, out := runCommand(t, d.env, append([]string{"verify", "--json"}, d.args...)...)
	if code != 0 {
		t.Fatalf("verify exited %d:\n%s", code, out)
	}
	var rep app.VerifyReport
	if err := json.Unmarshal([]byte(out[max(strings.Index(out, "{"), 0):]), &rep); err != nil {
		t.Fatalf("verify output: %v\n%s", err, out)
	}
	if !rep.OK() || rep.BlobsChecked != rep.BlobsStored {
		t.Fatalf("verify: %+v", rep)
	}
	t.Logf("verify: %d blobs stored and re-hashed, %d referenced hashes, nothing corrupt or missing", rep.BlobsStored, rep.References)
}

package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
	"github.com/blockstore/blockstore/internal/testenv"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	srv := testenv.MinIO(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return Config{
		Endpoint:     srv.Endpoint,
		Bucket:       "internal-" + hex.EncodeToString(rnd[:]),
		Prefix:       "p",
		AccessKey:    srv.AccessKey,
		SecretKey:    srv.SecretKey,
		Insecure:     true,
		CreateBucket: true,
		SpoolDir:     t.TempDir(),
	}
}

func openTest(t *testing.T) (*cas.Store, *Store) {
	t.Helper()
	b, err := Open(context.Background(), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	s := cas.New(b, cas.Options{})
	t.Cleanup(func() { s.Close() })
	return s, b
}

func TestKeys(t *testing.T) {
	_, b := openTest(t)
	h := cas.Sum([]byte("k"))
	if got, want := b.Key(h), "p/blobs/"+h.String(); got != want {
		t.Errorf("Key: %s, want %s", got, want)
	}
	if !strings.HasPrefix(b.tmpKey(), "p/tmp/") {
		t.Errorf("tmpKey: %s", b.tmpKey())
	}
}

// An upload with a known hash goes to the final key as a multipart upload
// that stays invisible until Commit, and Cancel aborts it.
func TestKnownHashUploadIsInvisibleUntilCommit(t *testing.T) {
	ctx := context.Background()
	s, b := openTest(t)
	c := castest.NewContent(1, 20<<20)
	h := c.Hash()
	for _, commit := range []bool{false, true} {
		u, err := s.Begin(ctx, cas.PutOptions{Expected: &h})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Seek(0, io.SeekStart)
		if _, err := u.ReadFrom(c); err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.Sum(); err != nil {
			t.Fatal(err)
		}
		if n, err := b.IncompleteUploads(ctx, h); err != nil || n != 1 {
			t.Errorf("incomplete uploads while the upload waits for Commit: %d, %v; want 1", n, err)
		}
		if _, err := s.Stat(ctx, h); !errors.Is(err, cas.ErrNotFound) {
			t.Errorf("stat before Commit: %v, want ErrNotFound", err)
		}
		if commit {
			if _, err := u.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Stat(ctx, h); err != nil {
				t.Errorf("stat after Commit: %v", err)
			}
		} else if err := u.Cancel(); err != nil {
			t.Fatal(err)
		}
		if n, err := b.IncompleteUploads(ctx, h); err != nil || n != 0 {
			t.Errorf("incomplete uploads after commit=%v: %d, %v; want 0", commit, n, err)
		}
	}
}

// Above the copy limit, Commit copies the temp key with a multipart
// ComposeObject (above 5 GiB in production; 0 here, with 8 MiB parts).
func TestComposeCopy(t *testing.T) {
	ctx := context.Background()
	s, b := openTest(t)
	b.copyLimit = 0
	b.composePartSize = 8 << 20 // two parts of 6 MiB
	c := castest.NewContent(2, 12<<20+77)
	info, err := s.Put(ctx, c, cas.PutOptions{})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if info.Hash != c.Hash() {
		t.Fatalf("put: %s, want %s", info.Hash, c.Hash())
	}
	got, err := s.ReadAll(ctx, info.Hash, 20<<20)
	if err != nil || !bytes.Equal(got, c.Bytes()) {
		t.Fatalf("read: %v", err)
	}
	if items, _, err := s.CleanTemp(ctx, 0); err != nil || items != 0 {
		t.Errorf("temp keys left: %d, %v", items, err)
	}
}

func TestCleanTempKeys(t *testing.T) {
	ctx := context.Background()
	s, b := openTest(t)
	blob, err := s.Put(ctx, strings.NewReader("stays"), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"p/tmp/leftover1", "p/tmp/leftover2", "other/tmp/not-ours"} {
		if _, err := b.client.PutObject(ctx, b.bucket, key, bytes.NewReader(make([]byte, 100)), 100, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if items, n, err := s.CleanTemp(ctx, time.Hour); err != nil || items != 0 || n != 0 {
		t.Errorf("clean older than 1h: %d, %d, %v; want nothing", items, n, err)
	}
	if items, n, err := s.CleanTemp(ctx, 0); err != nil || items != 2 || n != 200 {
		t.Errorf("clean all: %d, %d, %v; want 2 items, 200 bytes", items, n, err)
	}
	if _, err := b.client.StatObject(ctx, b.bucket, "other/tmp/not-ours", minio.StatObjectOptions{}); err != nil {
		t.Errorf("a key outside the prefix was removed: %v", err)
	}
	if _, err := s.Stat(ctx, blob.Hash); err != nil {
		t.Errorf("a blob was removed: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	base := testConfig(t)

	cfg := base
	cfg.CreateBucket = false
	if _, err := Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket: %v", err)
	}
	cfg = base
	cfg.PartSize = 1 << 20
	if _, err := Open(ctx, cfg); err == nil {
		t.Errorf("a 1 MiB part size was accepted")
	}
	cfg = base
	cfg.Bucket = ""
	if _, err := Open(ctx, cfg); err == nil {
		t.Errorf("no bucket was accepted")
	}
	cfg = base
	cfg.SpoolDir = filepath.Join(t.TempDir(), "absent")
	if _, err := Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "spool directory "+cfg.SpoolDir+" is not writable") {
		t.Errorf("a spool directory that does not exist: %v", err)
	}
	cfg.SpoolBytes = -1 // spooling off: the directory is not used
	if _, err := Open(ctx, cfg); err != nil {
		t.Errorf("spooling off, with a spool directory that does not exist: %v", err)
	}
	cfg = base
	cfg.SecretKey = "wrong-secret-do-not-print"
	_, err := Open(ctx, cfg)
	if err == nil {
		t.Fatalf("a wrong secret was accepted")
	}
	if strings.Contains(err.Error(), cfg.SecretKey) || strings.Contains(err.Error(), base.SecretKey) {
		t.Errorf("the error shows a secret: %v", err)
	}
	// A URL endpoint works too.
	cfg = base
	cfg.Endpoint = "http://" + base.Endpoint
	cfg.Insecure = false
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("URL endpoint: %v", err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in       string
		insecure bool
		host     string
		secure   bool
		ok       bool
	}{
		{"s3.amazonaws.com", false, "s3.amazonaws.com", true, true},
		{"127.0.0.1:9000", true, "127.0.0.1:9000", false, true},
		{"http://127.0.0.1:9000", false, "127.0.0.1:9000", false, true},
		{"https://minio.internal/", true, "minio.internal", true, true},
		{"ftp://x", false, "", false, false},
		{"http://h/path", false, "", false, false},
		{"http://user:pw@h", false, "", false, false},
		{"", false, "", false, false},
	}
	for _, tc := range tests {
		host, secure, err := parseEndpoint(tc.in, tc.insecure)
		if (err == nil) != tc.ok || host != tc.host || secure != tc.secure {
			t.Errorf("parseEndpoint(%q, %v) = %q, %v, %v", tc.in, tc.insecure, host, secure, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("parseEndpoint(%q): the error shows a password: %v", tc.in, err)
		}
	}
}

func TestTranslate(t *testing.T) {
	for _, code := range []string{"NoSuchKey", "NoSuchObject"} {
		err := fmt.Errorf("wrapped: %w", minio.ErrorResponse{Code: code, StatusCode: 404})
		if got := translate(err); !errors.Is(got, cas.ErrNotFound) {
			t.Errorf("translate(%s) = %v, want ErrNotFound", code, got)
		}
	}
	got := translate(minio.ErrorResponse{Code: "AccessDenied", Message: "Access Denied.", StatusCode: 403})
	if errors.Is(got, cas.ErrNotFound) || !strings.Contains(got.Error(), "AccessDenied") {
		t.Errorf("translate(AccessDenied) = %v", got)
	}
	if got := translate(minio.ErrorResponse{Code: "EntityTooLarge"}); !errors.Is(got, cas.ErrTooLarge) {
		t.Errorf("translate(EntityTooLarge) = %v", got)
	}
	plain := errors.New("connection refused")
	if got := translate(plain); got != plain {
		t.Errorf("translate(plain) = %v", got)
	}
}

func TestPresignExpiry(t *testing.T) {
	for _, c := range []struct {
		in, want time.Duration
		ok       bool
	}{
		{0, DefaultPresignExpiry, true},
		{time.Second, time.Second, true},
		{7 * 24 * time.Hour, 7 * 24 * time.Hour, true},
		{time.Millisecond, 0, false},
		{-time.Minute, 0, false},
		{8 * 24 * time.Hour, 0, false},
	} {
		got, err := presignExpiry(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("presignExpiry(%s) = %s, %v; want %s, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

// Parts go one at a time, with one buffer, when the process-wide budget of
// second buffers is spent; a budget taken is given back when the upload
// ends, committed or cancelled.
func TestOverlapBudget(t *testing.T) {
	s, b := openTest(t)
	b.partSize = MinPartSize
	ctx := context.Background()
	data := castest.NewContent(21, 4*MinPartSize+77).Bytes()
	h := cas.Sum(data)
	put := func() {
		t.Helper()
		info, err := s.Put(ctx, bytes.NewReader(data), cas.PutOptions{})
		if err != nil || info.Hash != h {
			t.Fatalf("put: %v %v", info, err)
		}
		if err := s.Delete(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for range maxOverlapParts {
		overlapParts <- struct{}{}
	}
	put() // without a second buffer
	for range maxOverlapParts {
		<-overlapParts
	}
	put() // with one
	if n := len(overlapParts); n != 0 {
		t.Errorf("%d second buffers still counted after the uploads ended", n)
	}
	u, err := s.Begin(ctx, cas.PutOptions{Expected: &h})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(data[:3*MinPartSize]); err != nil {
		t.Fatal(err)
	}
	if n := len(overlapParts); n != 1 {
		t.Errorf("an upload past its first parts counts %d second buffers, want 1", n)
	}
	if err := u.Cancel(); err != nil {
		t.Fatal(err)
	}
	if n := len(overlapParts); n != 0 {
		t.Errorf("%d second buffers still counted after Cancel", n)
	}
}

// An upload of unknown hash up to maxHeldBytes is held and sent to its
// final key at Commit, with no temporary key to copy; a larger one, or one
// that finds the budget spent, spools (TestSpooledUploads). Either way the
// budget is given back.
func TestHeldUploads(t *testing.T) {
	s, b := openTest(t)
	b.partSize = MinPartSize
	ctx := context.Background()
	moved := 0
	b.beforeMove = func() { moved++ }
	for _, tc := range []struct {
		name  string
		size  int64
		spent bool // the budget is spent by others
		moved bool
	}{
		{"held", 2*MinPartSize + 3, false, false},
		{"held to the limit", maxHeldBytes / MinPartSize * MinPartSize, false, false},
		{"larger: spooled", maxHeldBytes/MinPartSize*MinPartSize + 1, false, false},
		{"budget spent: spooled", 2 * MinPartSize, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.spent {
				for range maxHeldBudget {
					heldParts <- struct{}{}
				}
				defer func() {
					for range maxHeldBudget {
						<-heldParts
					}
				}()
			}
			moved = 0
			data := castest.NewContent(uint64(30+tc.size), tc.size).Bytes()
			h := cas.Sum(data)
			info, err := s.Put(ctx, bytes.NewReader(data), cas.PutOptions{})
			if err != nil || info.Hash != h {
				t.Fatalf("put: %v %v", info, err)
			}
			if got := moved > 0; got != tc.moved {
				t.Errorf("copied from a temporary key: %v, want %v", got, tc.moved)
			}
			got, err := s.ReadAll(ctx, h, tc.size)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %v (equal %v)", err, bytes.Equal(got, data))
			}
			// Again: the final key holds it already.
			if _, err := s.Put(ctx, bytes.NewReader(data), cas.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, h); err != nil {
				t.Fatal(err)
			}
			if n := len(heldParts); n != map[bool]int{false: 0, true: maxHeldBudget}[tc.spent] {
				t.Errorf("%d held parts still counted", n)
			}
		})
	}
	// Cancelled while holding.
	u, err := s.Begin(ctx, cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(castest.NewContent(9, 3*MinPartSize).Bytes()); err != nil {
		t.Fatal(err)
	}
	if len(heldParts) == 0 {
		t.Error("an upload of unknown hash holds nothing")
	}
	if err := u.Cancel(); err != nil {
		t.Fatal(err)
	}
	if n := len(heldParts); n != 0 {
		t.Errorf("%d held parts still counted after Cancel", n)
	}
}

// An upload of unknown hash too large to hold spools to a local file and
// goes from it to its final key at Commit: no temporary key, no copy. With
// spooling off, or its budget spent on the way, it goes to a temporary key
// (spooled bytes first). Whatever the way, the budget is given back and the
// spool directory stays empty.
func TestSpooledUploads(t *testing.T) {
	cfg := testConfig(t)
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := cas.New(b, cas.Options{})
	t.Cleanup(func() { s.Close() })
	b.partSize = MinPartSize
	ctx := context.Background()
	moved := 0
	b.beforeMove = func() { moved++ }
	full := b.spool.left.Load()
	check := func(t *testing.T) {
		t.Helper()
		if left := b.spool.left.Load(); left != full {
			t.Errorf("spool budget %d left after the upload, want %d", left, full)
		}
		if names, _ := os.ReadDir(cfg.SpoolDir); len(names) != 0 {
			t.Errorf("%d files left in the spool directory", len(names))
		}
		if n := len(heldParts); n != 0 {
			t.Errorf("%d held parts still counted", n)
		}
	}
	const large = maxHeldBytes + spoolStep + 5<<20 + 7 // spills past a budget of held + one step
	for _, tc := range []struct {
		name      string
		size      int64
		announced bool
		budget    int64 // 0: full; < 0: spooling off
		moved     bool
	}{
		{"spooled", maxHeldBytes + 3*MinPartSize + 1, false, 0, false},
		{"announced: spooled from the start", maxHeldBytes + 3*MinPartSize + 1, true, 0, false},
		{"several steps of the budget", large, false, 0, false},
		{"budget spent on the way: temporary key", large, false, maxHeldBytes + spoolStep, true},
		{"spooling off: temporary key", maxHeldBytes + 3*MinPartSize + 1, false, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch {
			case tc.budget > 0:
				b.spool.left.Store(tc.budget)
				full = tc.budget
			case tc.budget < 0:
				dir := b.spool.dir
				b.spool.dir = ""
				defer func() { b.spool.dir = dir }()
			}
			defer func() { full = int64(DefaultSpoolBytes); b.spool.left.Store(full) }()
			moved = 0
			data := castest.NewContent(uint64(70+tc.size), tc.size).Bytes()
			h := cas.Sum(data)
			opt := cas.PutOptions{}
			if tc.announced {
				opt.Size = tc.size
			}
			// Through a reader that hides its length, in 1 MiB writes.
			info, err := s.Put(ctx, struct{ io.Reader }{bytes.NewReader(data)}, opt)
			if err != nil || info.Hash != h {
				t.Fatalf("put: %v %v", info, err)
			}
			if got := moved > 0; got != tc.moved {
				t.Errorf("copied from a temporary key: %v, want %v", got, tc.moved)
			}
			got, err := s.ReadAll(ctx, h, tc.size)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %v (equal %v)", err, bytes.Equal(got, data))
			}
			check(t)
			// Again: the final key holds it already.
			if _, err := s.Put(ctx, bytes.NewReader(data), opt); err != nil {
				t.Fatal(err)
			}
			check(t)
			if err := s.Delete(ctx, h); err != nil {
				t.Fatal(err)
			}
		})
	}

	// Announced large: nothing is held in memory, the file takes it all.
	data := castest.NewContent(77, maxHeldBytes+1).Bytes()
	h := cas.Sum(data)
	cw, err := b.Create(ctx, cas.CreateOptions{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	w := cw.(*writer)
	if _, err := w.Write(data[:SmallBlobSize+1]); err != nil {
		t.Fatal(err)
	}
	if w.spool == nil || len(heldParts) != 0 || w.reserved < int64(len(data)) {
		t.Errorf("announced large: spooling %v, %d held parts, %d of the budget taken", w.spool != nil, len(heldParts), w.reserved)
	}
	if err := w.Cancel(); err != nil {
		t.Fatal(err)
	}
	check(t)

	// Cancelled while spooling, and a Commit whose context ends: nothing
	// stored, nothing left.
	for _, end := range []string{"cancel", "commit cancelled"} {
		u, err := s.Begin(ctx, cas.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write(data); err != nil {
			t.Fatal(err)
		}
		if b.spool.left.Load() == full {
			t.Errorf("%s: an upload of %d bytes took none of the spool budget", end, len(data))
		}
		if end == "cancel" {
			if err := u.Cancel(); err != nil {
				t.Fatal(err)
			}
		} else {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := u.Commit(cctx); err == nil {
				t.Errorf("a commit with its context cancelled succeeded")
			}
		}
		check(t)
		if _, err := s.Stat(ctx, h); !errors.Is(err, cas.ErrNotFound) {
			t.Errorf("%s: the blob is there: %v", end, err)
		}
	}
}

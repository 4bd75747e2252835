package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/internal/testserver"
)

const courseDir = "testdata/olx-course"

// world is a server, a client of it and a log of the requests it saw.
type world struct {
	srv *testserver.Server
	c   *client.Client

	mu   sync.Mutex
	reqs []string
	// fault, when set, may answer a request itself (after it is logged).
	fault func(w http.ResponseWriter, r *http.Request) bool
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{srv: testserver.Start(t)}
	w.c = w.srv.Client(t, client.Options{Retries: 2})
	w.srv.SetHook(func(rw http.ResponseWriter, r *http.Request) bool {
		w.mu.Lock()
		w.reqs = append(w.reqs, r.Method+" "+r.URL.Path)
		fault := w.fault
		w.mu.Unlock()
		return fault != nil && fault(rw, r)
	})
	return w
}

func (w *world) setFault(f func(rw http.ResponseWriter, r *http.Request) bool) {
	w.mu.Lock()
	w.fault = f
	w.mu.Unlock()
}

// requests returns the requests logged since the last call that match prefix.
func (w *world) requests(prefix string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, r := range w.reqs {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	w.reqs = nil
	return out
}

// copyTree copies src into a new temporary directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// readTree returns every regular file under dir by slash-separated name.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type entities struct {
	units  map[string]client.Unit
	assets map[string]client.Asset
	byID   map[uuid.UUID]string
}

func listEntities(t *testing.T, c *client.Client, col uuid.UUID) entities {
	t.Helper()
	e := entities{units: map[string]client.Unit{}, assets: map[string]client.Asset{}, byID: map[uuid.UUID]string{}}
	ctx := context.Background()
	for u, err := range c.AllUnits(ctx, col, client.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		e.units[u.Name] = u
		e.byID[u.UUID] = u.Name
	}
	for a, err := range c.AllAssets(ctx, col, client.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		e.assets[a.Name] = a
		e.byID[a.UUID] = a.Name
	}
	return e
}

// linkNames returns a unit's links as "kind:name".
func (e entities) linkNames(links []client.Link) []string {
	out := []string{}
	for _, l := range links {
		out = append(out, string(l.Kind)+":"+e.byID[l.Target])
	}
	return out
}

func importOpts(name string) ImportOptions {
	return ImportOptions{NewCollection: &client.NewCollection{Name: name}, Jobs: 3}
}

func TestImportOLXCourse(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var logBuf bytes.Buffer
	opt := importOpts("BS101")
	opt.Progress = &logBuf
	sum, err := Import(ctx, w.c, courseDir, opt)
	if err != nil {
		t.Fatalf("import: %v\n%+v", err, sum)
	}
	tree := readTree(t, courseDir)
	var total int64
	for _, b := range tree {
		total += int64(len(b))
	}
	logo := int64(len(tree["static/images/logo.png"]))
	if !sum.CollectionCreated || sum.Layout != LayoutOLX || sum.Files != 22 || sum.Units != 13 || sum.Assets != 9 ||
		sum.Bytes != total || sum.EntitiesCreated != 22 || sum.VersionsAdded != 0 || sum.Unchanged != 0 || sum.Failed != 0 {
		t.Errorf("summary = %+v", sum)
	}
	// The two identical logos are one blob, uploaded once.
	if sum.BlobsUploaded != 21 || sum.BytesUploaded != total-logo || sum.BytesDeduplicated != logo {
		t.Errorf("uploaded %d blobs, %d bytes (dedup %d), want 21, %d (%d)", sum.BlobsUploaded, sum.BytesUploaded, sum.BytesDeduplicated, total-logo, logo)
	}
	if puts := w.requests("PUT /api/v1/blobs/"); len(puts) != 8 { // the 9 assets, one blob shared
		t.Errorf("blob uploads = %d: %v", len(puts), puts)
	}
	if !strings.Contains(logBuf.String(), "import: 22/22 files") {
		t.Errorf("progress output: %q", logBuf.String())
	}

	e := listEntities(t, w.c, sum.Collection)
	if len(e.units) != 13 || len(e.assets) != 9 {
		t.Fatalf("%d units, %d assets", len(e.units), len(e.assets))
	}
	wantLinks := map[string][]string{
		"course.xml":                {"unit:course/2024.xml"},
		"course/2024.xml":           {"unit:chapter/intro.xml", "unit:chapter/advanced.xml"},
		"chapter/intro.xml":         {"unit:sequential/welcome.xml"},
		"chapter/advanced.xml":      {"unit:sequential/practice.xml"},
		"sequential/welcome.xml":    {"unit:vertical/welcome_unit.xml", "unit:vertical/video_unit.xml"},
		"sequential/practice.xml":   {"unit:vertical/problems.xml"},
		"vertical/welcome_unit.xml": {"unit:html/welcome_text.xml", "unit:html/shared_text.xml"},
		"vertical/video_unit.xml":   {"unit:video/intro_video.xml", "unit:html/shared_text.xml"},
		"vertical/problems.xml":     {"unit:problem/checkpoint.xml"},
		"html/welcome_text.xml":     {"asset:html/welcome_text.html", "asset:static/images/logo.png", "asset:static/syllabus.txt"},
		"html/shared_text.xml":      {"asset:html/shared_text.html"},
		"problem/checkpoint.xml":    {"asset:static/images/logo.png", "asset:static/syllabus.txt"},
		"video/intro_video.xml":     {"asset:static/syllabus.txt", "asset:static/intro_en.srt"},
	}
	for name, want := range wantLinks {
		u, ok := e.units[name]
		if !ok {
			t.Errorf("no unit %s", name)
			continue
		}
		links, err := w.c.UnitLinks(ctx, u.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.linkNames(links); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("links of %s = %v, want %v", name, got, want)
		}
		for _, l := range links {
			if l.Version != nil {
				t.Errorf("%s: pinned link %+v", name, l)
			}
		}
		if u.Hash != cas.Sum([]byte(tree[name])) || u.Size != int64(len(tree[name])) {
			t.Errorf("unit %s: hash/size do not match the file", name)
		}
	}
	lb, err := w.c.UnitLinkedBy(ctx, e.units["html/shared_text.xml"].UUID, client.ListOptions{})
	if err != nil || len(lb.Items) != 2 {
		t.Errorf("shared_text linked by %d units (%v)", len(lb.Items), err)
	}
	for name, mt := range map[string]string{"static/intro_en.srt": "application/x-subrip", "static/images/logo.png": "image/png",
		"html/welcome_text.html": "text/html", "policies/assets.json": "application/json", "static/syllabus.txt": "text/plain"} {
		if got := e.assets[name].MediaType; got != mt {
			t.Errorf("media type of %s = %q, want %q", name, got, mt)
		}
	}
	var js map[string]any
	b, _ := json.Marshal(sum)
	if err := json.Unmarshal(b, &js); err != nil || js["bytes_deduplicated"] == nil || js["entities_created"] == nil || js["dedup_ratio"] == nil {
		t.Errorf("summary JSON = %s", b)
	}
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil || !strings.Contains(text.String(), "22 created") {
		t.Errorf("summary text = %q", text.String())
	}

	// Importing again finds everything: nothing uploaded, nothing created.
	w.requests("")
	again, err := Import(ctx, w.c, courseDir, importOpts("BS101"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Collection != sum.Collection || again.CollectionCreated || again.BytesUploaded != 0 || again.BlobsUploaded != 0 ||
		again.EntitiesCreated != 0 || again.VersionsAdded != 0 || again.Unchanged != 22 || again.DedupRatio != 1 {
		t.Errorf("re-import summary = %+v", again)
	}
	for _, r := range w.requests("") {
		if strings.HasPrefix(r, "PUT ") || (strings.HasPrefix(r, "POST ") && r != "POST /api/v1/blobs/missing") {
			t.Errorf("re-import wrote: %s", r)
		}
	}
}

func TestImportChangedFiles(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	dir := copyTree(t, courseDir)
	first, err := Import(ctx, w.c, dir, importOpts("c"))
	if err != nil {
		t.Fatal(err)
	}
	before := listEntities(t, w.c, first.Collection)

	// An asset's bytes change, a unit loses a child, a file appears.
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("static/syllabus.txt", "A new syllabus\n")
	write("vertical/problems.xml", "<vertical display_name=\"Check yourself\"/>\n")
	write("static/new.txt", "new file\n")
	sum, err := Import(ctx, w.c, dir, ImportOptions{Collection: first.Collection, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.EntitiesCreated != 1 || sum.VersionsAdded != 2 || sum.Unchanged != 20 || sum.BlobsUploaded != 3 ||
		sum.BytesUploaded != int64(len("A new syllabus\n")+len("<vertical display_name=\"Check yourself\"/>\n")+len("new file\n")) {
		t.Errorf("summary = %+v", sum)
	}
	after := listEntities(t, w.c, first.Collection)
	syl := after.assets["static/syllabus.txt"]
	if syl.UUID != before.assets["static/syllabus.txt"].UUID || *syl.Version != 2 || syl.Hash != cas.Sum([]byte("A new syllabus\n")) {
		t.Errorf("syllabus = %+v", syl)
	}
	pr := after.units["vertical/problems.xml"]
	if pr.UUID != before.units["vertical/problems.xml"].UUID || *pr.Version != 2 || len(pr.Links) != 0 {
		t.Errorf("problems unit = %+v", pr)
	}
	// Unpinned links follow the new version: the units linking the
	// syllabus did not change.
	if v := after.units["video/intro_video.xml"].Version; *v != 1 {
		t.Errorf("video unit version %d", *v)
	}
	exp, err := w.c.UnitExpanded(ctx, after.units["video/intro_video.xml"].UUID, client.Latest)
	if err != nil {
		t.Fatal(err)
	}
	if r := exp.Links[0].Resolved; r == nil || r.Hash != syl.Hash {
		t.Errorf("the video's syllabus link resolves to %+v", r)
	}
	if hist, err := w.c.AssetVersions(ctx, syl.UUID, client.ListOptions{}); err != nil || len(hist.Items) != 2 {
		t.Errorf("syllabus history: %d versions (%v)", len(hist.Items), err)
	}
}

func TestImportExportRoundTrip(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sum, err := Import(ctx, w.c, courseDir, importOpts("round trip"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export")
	var logBuf bytes.Buffer
	es, err := Export(ctx, w.c, sum.Collection, out, ExportOptions{Jobs: 3, Progress: &logBuf})
	if err != nil {
		t.Fatalf("export: %v\n%+v", err, es)
	}
	want, got := readTree(t, courseDir), readTree(t, out)
	if len(got) != len(want) {
		t.Errorf("exported %d files, want %d", len(got), len(want))
	}
	for name, b := range want {
		if got[name] != b {
			t.Errorf("%s differs after the round trip", name)
		}
	}
	if es.Files != 22 || es.Units != 13 || es.Assets != 9 || es.Written != 22 || es.Unchanged != 0 || es.Failed != 0 {
		t.Errorf("export summary = %+v", es)
	}
	if !strings.Contains(logBuf.String(), "export: 22/22 files") {
		t.Errorf("export progress: %q", logBuf.String())
	}
	// No temporary file is left behind.
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".blockstore-export-") {
			t.Errorf("left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Exporting again leaves identical files alone; a changed file is an
	// error unless Overwrite.
	es, err = Export(ctx, w.c, sum.Collection, out, ExportOptions{})
	if err != nil || es.Unchanged != 22 || es.Written != 0 {
		t.Fatalf("second export: %+v %v", es, err)
	}
	os.WriteFile(filepath.Join(out, "static/syllabus.txt"), []byte("edited"), 0o644)
	es, err = Export(ctx, w.c, sum.Collection, out, ExportOptions{})
	if !errors.Is(err, ErrIncomplete) || es.Failed != 1 || !strings.Contains(es.Errors[0], "static/syllabus.txt") {
		t.Fatalf("export over an edited file: %+v %v", es, err)
	}
	es, err = Export(ctx, w.c, sum.Collection, out, ExportOptions{Overwrite: true})
	if err != nil || es.Written != 1 {
		t.Fatalf("export with overwrite: %+v %v", es, err)
	}
	if got := readTree(t, out)["static/syllabus.txt"]; got != want["static/syllabus.txt"] {
		t.Errorf("overwritten syllabus = %q", got)
	}
}

// randomTree writes n files of size bytes (and a few small ones) and
// returns their total size.
func randomTree(t testing.TB, dir string, n int, size int, seed uint64) int64 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var total int64
	buf := make([]byte, size)
	for i := range n {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%4))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.bin", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(size)
	}
	return total
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(s int) {
	r.status = s
	r.ResponseWriter.WriteHeader(s)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// checkComplete verifies that every entity of the collection points at
// bytes the server has, whole.
func checkComplete(t *testing.T, c *client.Client, col uuid.UUID) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for a, err := range c.AllAssets(ctx, col, client.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.AssetContent(ctx, a.UUID, client.Latest, client.GetOptions{})
		if err != nil {
			t.Fatalf("asset %s: %v", a.Name, err)
		}
		h := cas.NewHasher()
		k, err := io.Copy(h, d.Body)
		d.Close()
		if err != nil || k != a.Size || h.Sum() != a.Hash {
			t.Fatalf("asset %s is not complete: %d bytes, %v", a.Name, k, err)
		}
		n++
	}
	return n
}

func TestInterruptedImportResumes(t *testing.T) {
	for _, how := range []string{"server fails", "context cancelled"} {
		t.Run(how, func(t *testing.T) {
			w := newWorld(t)
			dir := t.TempDir()
			const files, size = 40, 32 << 10
			total := randomTree(t, dir, files, size, 7)

			// Count the uploads that stored a blob, and those that sent
			// bytes the server already had (there must be none), across
			// both runs.
			var uploadsMu sync.Mutex
			uploads := map[string]int{}
			resent := 0
			countPut := func(rw http.ResponseWriter, r *http.Request) bool {
				rec := &statusRecorder{ResponseWriter: rw}
				w.srv.Handler().ServeHTTP(rec, r)
				uploadsMu.Lock()
				switch rec.status {
				case http.StatusCreated:
					uploads[r.URL.Path]++
				case http.StatusOK:
					resent++
				}
				uploadsMu.Unlock()
				return true
			}
			var puts atomic.Int32
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w.setFault(func(rw http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPut {
					return false
				}
				if puts.Add(1) > 12 {
					if how == "context cancelled" {
						cancel()
					} else {
						rw.Header().Set("Content-Type", "application/json")
						rw.WriteHeader(http.StatusInternalServerError)
						io.WriteString(rw, `{"error":{"code":"internal","message":"injected failure"}}`)
						return true
					}
				}
				return countPut(rw, r)
			})
			opt := importOpts("resumable")
			opt.Jobs = 2
			opt.MissingBatch = 8 // several batches: entities commit while others hash
			sum, err := Import(ctx, w.c, dir, opt)
			if err == nil {
				t.Fatalf("interrupted import succeeded: %+v", sum)
			}
			if how == "server fails" && !strings.Contains(err.Error(), "injected failure") {
				t.Errorf("error does not say why: %v", err)
			}
			if how == "context cancelled" && !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v", err)
			}
			if sum.Collection == uuid.Nil {
				t.Fatal("no collection in the summary")
			}
			committed := checkComplete(t, w.c, sum.Collection)
			if committed >= files {
				t.Fatalf("all %d committed despite the interruption", committed)
			}

			w.setFault(func(rw http.ResponseWriter, r *http.Request) bool {
				return r.Method == http.MethodPut && countPut(rw, r)
			})
			opt.MissingBatch = 0
			again, err := Import(context.Background(), w.c, dir, opt)
			if err != nil {
				t.Fatalf("resumed import: %v", err)
			}
			// A create the client gave up on may still have committed on
			// the server after the first run returned: count it unchanged.
			if again.Collection != sum.Collection || again.EntitiesCreated+again.Unchanged != files || again.Unchanged < int64(committed) {
				t.Errorf("resumed summary = %+v (committed before: %d)", again, committed)
			}
			if sum.BytesUploaded+again.BytesUploaded > total {
				t.Errorf("uploaded %d + %d bytes of %d", sum.BytesUploaded, again.BytesUploaded, total)
			}
			for p, n := range uploads {
				if n > 1 {
					t.Errorf("%s stored %d times", p, n)
				}
			}
			if resent > 0 {
				t.Errorf("%d uploads sent bytes the server had", resent)
			}
			if n := checkComplete(t, w.c, sum.Collection); n != files {
				t.Errorf("%d assets after the resumed import, want %d", n, files)
			}
		})
	}
}

func TestImportBadInput(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	dir := t.TempDir()
	for name, data := range map[string]string{"ok.txt": "fine", "sub/deep.txt": "deep", "target.txt": "target"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("loop-b", filepath.Join(dir, "loop-a")))
	must(os.Symlink("loop-a", filepath.Join(dir, "loop-b")))
	must(os.Symlink("nowhere", filepath.Join(dir, "dangling")))
	must(os.Symlink("..", filepath.Join(dir, "sub", "parent"))) // a directory loop if followed
	must(os.Symlink("target.txt", filepath.Join(dir, "link.txt")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	unreadable := os.Getuid() != 0 // root reads anything
	if unreadable {
		must(os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("x"), 0o000))
	}

	sum, err := Import(ctx, w.c, dir, importOpts("bad"))
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v", err)
	}
	wantFailed := int64(3)
	if unreadable {
		wantFailed++
	}
	if sum.Failed != wantFailed || sum.EntitiesCreated != 4 {
		t.Errorf("summary = %+v", sum)
	}
	all := strings.Join(sum.Errors, "\n")
	for _, want := range []string{"loop-a: symbolic link loop", "loop-b: symbolic link loop", "dangling: dangling symbolic link"} {
		if !strings.Contains(all, want) {
			t.Errorf("errors lack %q:\n%s", want, all)
		}
	}
	if unreadable && !strings.Contains(all, "secret.txt") {
		t.Errorf("errors lack the unreadable file:\n%s", all)
	}
	skipped := strings.Join(sum.Skipped, "\n")
	if !strings.Contains(skipped, "sub/parent: symbolic link to a directory") || !strings.Contains(skipped, "fifo: named pipe") {
		t.Errorf("skipped = %v", sum.Skipped)
	}
	e := listEntities(t, w.c, sum.Collection)
	if a, ok := e.assets["link.txt"]; !ok || a.Hash != cas.Sum([]byte("target")) {
		t.Errorf("the link to a file was not imported as its target: %+v", a)
	}
	if len(e.assets) != 4 {
		t.Errorf("assets: %v", e.byID)
	}

	// Not a directory, no collection, both collections.
	if _, err := Import(ctx, w.c, filepath.Join(dir, "ok.txt"), importOpts("x")); !errors.Is(err, ErrBadInput) {
		t.Errorf("a file as the tree: %v", err)
	}
	if _, err := Import(ctx, w.c, dir, ImportOptions{}); err == nil {
		t.Error("no collection given: no error")
	}
	if _, err := Import(ctx, w.c, dir, ImportOptions{Collection: uuid.New()}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown collection: %v", err)
	}
	if _, err := Import(ctx, w.c, dir, ImportOptions{Layout: LayoutOLX, Collection: sum.Collection}); !errors.Is(err, ErrBadInput) {
		t.Errorf("olx layout without course.xml: %v", err)
	}
}

func TestImportServerErrors(t *testing.T) {
	dir := copyTree(t, courseDir)
	for _, tc := range []struct {
		name   string
		status int
		code   string
		match  string
	}{
		{"unauthorized", 401, "unauthorized", "401 unauthorized"},
		{"server error on units", 500, "internal", "POST /api/v1/units: 500 internal"},
		{"unavailable on blobs", 503, "unavailable", "503 unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.setFault(func(rw http.ResponseWriter, r *http.Request) bool {
				hit := false
				switch tc.name {
				case "unauthorized":
					hit = strings.HasPrefix(r.URL.Path, "/api/v1/blobs")
				case "server error on units":
					hit = r.Method == http.MethodPost && r.URL.Path == "/api/v1/units"
				default:
					hit = r.Method == http.MethodPut
				}
				if !hit {
					return false
				}
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(tc.status)
				fmt.Fprintf(rw, `{"error":{"code":%q,"message":"injected"}}`, tc.code)
				return true
			})
			sum, err := Import(context.Background(), w.c, dir, importOpts(tc.name))
			if err == nil || errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), tc.match) {
				t.Fatalf("err = %v", err)
			}
			if len(sum.Errors) > 1 {
				t.Errorf("a stopped import reports its cause once, not per file: %v", sum.Errors)
			}
			// Whatever was committed is whole, and a rerun finishes.
			checkComplete(t, w.c, sum.Collection)
			w.setFault(nil)
			if _, err := Import(context.Background(), w.c, dir, ImportOptions{Collection: sum.Collection}); err != nil {
				t.Fatalf("rerun: %v", err)
			}
		})
	}
}

func TestImportReferenceCycle(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	files := map[string]string{
		"course.xml":        `<course url_name="c"/>`,
		"course/c.xml":      `<course><chapter url_name="a"/><chapter url_name="ok"/></course>`,
		"chapter/a.xml":     `<chapter><sequential url_name="b"/></chapter>`,
		"sequential/b.xml":  `<sequential><chapter url_name="a"/></sequential>`,
		"chapter/ok.xml":    `<chapter><html url_name="self"/></chapter>`,
		"html/self.xml":     `<html url_name="self">refers to itself: not a link</html>`,
		"chapter/latin.xml": "<chapter>caf\xe9</chapter>",
	}
	for name, data := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	sum, err := Import(context.Background(), w.c, dir, importOpts("cycle"))
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v", err)
	}
	// a and b wait on each other; course/c.xml and course.xml wait on a.
	if sum.Failed != 4 || sum.EntitiesCreated != 3 {
		t.Errorf("summary = %+v", sum)
	}
	if !strings.Contains(strings.Join(sum.Errors, "\n"), "references form a cycle") {
		t.Errorf("errors = %v", sum.Errors)
	}
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "chapter/latin.xml: not valid UTF-8") {
		t.Errorf("warnings = %v", sum.Warnings)
	}
	e := listEntities(t, w.c, sum.Collection)
	if _, ok := e.assets["chapter/latin.xml"]; !ok {
		t.Error("the latin-1 OLX file is not an asset")
	}
	if u := e.units["html/self.xml"]; len(u.Links) != 0 {
		t.Errorf("self link: %+v", u.Links)
	}
}

func TestPlainLayoutAndProgress(t *testing.T) {
	w := newWorld(t)
	dir := copyTree(t, courseDir)
	var out bytes.Buffer
	opt := importOpts("plain")
	opt.Layout = LayoutPlain
	opt.Progress, opt.IsTerminal = &out, true
	sum, err := Import(context.Background(), w.c, dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Layout != LayoutPlain || sum.Units != 0 || sum.Assets != 22 || sum.Links != 0 {
		t.Errorf("summary = %+v", sum)
	}
	if !strings.Contains(out.String(), "import 22/22 files") {
		t.Errorf("bar output = %q", out.String())
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "static/a b.png", "x/y/z.xml", "..a", "a..b/c"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "/abs", "../up", "a/../../b", "a//b", "a/", "./a", "a/./b", "a\x00b"} {
		if err := checkName(bad); !errors.Is(err, ErrUnsafeName) {
			t.Errorf("checkName(%q) = %v", bad, err)
		}
	}
}

func TestExportRefusesUnsafeNames(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	col, err := w.c.CreateCollection(ctx, client.NewCollection{Name: "unsafe"})
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, name := range []string{"../escape.txt", "/etc/absolute.txt", "a//b.txt", "ok/fine.txt"} {
		_, err := w.c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: name}, client.Content{Body: client.BytesBody([]byte(name))})
		if err == nil {
			accepted++
		}
	}
	if _, err := w.c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, OLX: "<unnamed/>"}); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	es, err := Export(ctx, w.c, col.UUID, out, ExportOptions{})
	if accepted > 1 && (!errors.Is(err, ErrIncomplete) || es.Failed != int64(accepted-1)) {
		t.Errorf("export of %d unsafe names: %+v %v", accepted-1, es, err)
	}
	if es.Written != 1 || len(es.Skipped) != 1 {
		t.Errorf("export summary = %+v", es)
	}
	got := readTree(t, parent)
	if len(got) != 1 || got["out/ok/fine.txt"] != "ok/fine.txt" {
		t.Errorf("files written: %v", got)
	}
}

func TestExportStaysInsideThroughSymlinks(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	col, err := w.c.CreateCollection(ctx, client.NewCollection{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "static/x.txt"}, client.Content{Body: client.BytesBody([]byte("x"))}); err != nil {
		t.Fatal(err)
	}
	out, elsewhere := t.TempDir(), t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(out, "static")); err != nil {
		t.Fatal(err)
	}
	_, err = Export(ctx, w.c, col.UUID, out, ExportOptions{})
	if !errors.Is(err, ErrIncomplete) {
		t.Errorf("export through a symlink out of the directory: %v", err)
	}
	if got := readTree(t, elsewhere); len(got) != 0 {
		t.Errorf("wrote outside the export directory: %v", got)
	}
}

// TestEntitiesCommitWhileUploading: entities are created as their bytes
// land, not after the whole tree: while the last uploads are held back,
// earlier files are already assets of the collection.
func TestEntitiesCommitWhileUploading(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	const files = 24
	randomTree(t, dir, files, 8<<10, 3)
	observer := w.srv.Client(t, client.Options{})
	var puts atomic.Int32
	var seen atomic.Int32
	var colMu sync.Mutex
	var col uuid.UUID
	w.setFault(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/collections" {
			body := &bytes.Buffer{}
			w.srv.Handler().ServeHTTP(teeWriter{rw, body}, r)
			var c client.Collection
			if json.Unmarshal(body.Bytes(), &c) == nil {
				colMu.Lock()
				col = c.UUID
				colMu.Unlock()
			}
			return true
		}
		if r.Method != http.MethodPut || puts.Add(1) != files-2 {
			return false
		}
		colMu.Lock()
		id := col
		colMu.Unlock()
		// Hold this upload until earlier files are entities (bounded).
		for range 200 {
			p, err := observer.CollectionAssets(r.Context(), id, client.ListOptions{})
			if err == nil && len(p.Items) > 0 {
				seen.Store(int32(len(p.Items)))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	})
	opt := importOpts("early")
	opt.MissingBatch = 4
	opt.Jobs = 2
	sum, err := Import(context.Background(), w.c, dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.EntitiesCreated != files {
		t.Errorf("summary = %+v", sum)
	}
	if seen.Load() == 0 {
		t.Error("no entity existed while the uploads were still running")
	}
}

// teeWriter copies an answer's body aside.
type teeWriter struct {
	http.ResponseWriter
	copy *bytes.Buffer
}

func (t teeWriter) Write(p []byte) (int, error) {
	t.copy.Write(p)
	return t.ResponseWriter.Write(p)
}

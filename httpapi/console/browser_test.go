package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/blockstore/blockstore/internal/app"
	"github.com/blockstore/blockstore/internal/testenv"
)

const (
	writeToken = "console-test-write-token"
	readToken  = "console-test-read-token"
	// browserTimeout bounds one browser session, waits included.
	browserTimeout = 3 * time.Minute
)

// server is a real Blockstore (app.Open on the embedded deployment) with
// both tokens, on 127.0.0.1.
type server struct {
	url  string
	host string // 127.0.0.1:port
}

func startServer(t *testing.T) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.Open(ctx, app.Config{
		DataDir: filepath.Join(t.TempDir(), "data"),
		Tokens:  app.Tokens{Write: writeToken, Read: readToken},
	})
	if err != nil {
		t.Fatalf("app.Open: %v", err)
	}
	srv := httptest.NewServer(a.Handler()) // listens on 127.0.0.1
	t.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	u, _ := url.Parse(srv.URL)
	return &server{url: srv.URL, host: u.Host}
}

// call sends one API request with tok and decodes a JSON answer into out.
func (s *server) call(t *testing.T, tok, method, path, ctype string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func (s *server) postJSON(t *testing.T, path string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	s.call(t, writeToken, "POST", path, "application/json", b, out)
}

// seed stores what the overview shows: a collection whose one video is
// stored once for two assets, a unit in two versions linking it, and a
// finished sweep that freed a stray blob.
type seeded struct {
	collection, unit, asset string
	olx                     string
}

func (s *server) seed(t *testing.T) seeded {
	t.Helper()
	var c struct{ UUID string }
	s.postJSON(t, "/api/v1/collections", map[string]any{"name": "Intro to Physics", "garbage_collect": true}, &c)
	video := bytes.Repeat([]byte("frame of a lecture video "), 12000) // 300,000 bytes
	var a1, a2 struct{ UUID, Hash string }
	s.call(t, writeToken, "POST", "/api/v1/assets?collection="+c.UUID+"&name=lecture.mp4", "video/mp4", video, &a1)
	s.call(t, writeToken, "POST", "/api/v1/assets?collection="+c.UUID+"&name=lecture-copy.mp4&media_type=video/mp4&hash="+a1.Hash, "", nil, &a2)
	olx := `<problem display_name="Falling bodies"><p>How long does a stone take to fall 20 m?</p></problem>`
	var u struct{ UUID string }
	s.postJSON(t, "/api/v1/units", map[string]any{
		"collection": c.UUID, "name": "Lesson 1", "olx": "<problem/>",
		"links": []map[string]any{{"target": a1.UUID}},
	}, &u)
	s.postJSON(t, "/api/v1/units/"+u.UUID+"/versions", map[string]any{"olx": olx}, nil)
	// A stray blob, and a sweep with no grace that frees it.
	s.call(t, writeToken, "POST", "/api/v1/blobs", "application/octet-stream", bytes.Repeat([]byte("stray "), 2000), nil)
	var rep struct {
		BlobsDeleted int64 `json:"blobs_deleted"`
	}
	s.postJSON(t, "/api/v1/gc", map[string]any{"grace": "0s"}, &rep)
	if rep.BlobsDeleted != 1 {
		t.Fatalf("seed sweep deleted %d blobs, want the stray one", rep.BlobsDeleted)
	}
	return seeded{collection: c.UUID, unit: u.UUID, asset: a1.UUID, olx: olx}
}

// TestStatic checks that the page and its files are served without a
// token (they hold no data), that the data calls need one, and what
// GET /api/v1/stats reports to each token.
func TestStatic(t *testing.T) {
	s := startServer(t)
	for _, p := range []string{"/", "/ui", "/ui/", "/ui/console.js", "/ui/console.css"} {
		resp, err := http.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Errorf("GET %s without a token: %d, %d bytes", p, resp.StatusCode, len(body))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
		}
		if bytes.Contains(body, []byte("http://")) || bytes.Contains(body, []byte("https://")) {
			t.Errorf("GET %s names another host", p)
		}
	}
	for p, want := range map[string]int{"/ui/nope.js": 404, "/ui/a/b": 401, "/api/v1/stats": 401} {
		resp, err := http.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a token: %d, want %d", p, resp.StatusCode, want)
		}
	}

	sd := s.seed(t)
	var st struct {
		Access     string
		Deployment struct{ Kind, Index, Blobs string }
		Readiness  struct{ Index, Blobs struct{ Ready bool } }
		Totals     struct {
			Collections, Units, Assets, Versions, Blobs int64
			Stored                                      int64 `json:"stored_bytes"`
			Referenced                                  int64 `json:"referenced_bytes"`
		}
		LastGC struct {
			Status string
		} `json:"last_gc"`
	}
	s.call(t, writeToken, "GET", "/api/v1/stats", "", nil, &st)
	if st.Access != "write" || st.Deployment.Kind != "embedded" || st.Deployment.Index != "pebble" || st.Deployment.Blobs != "directory" ||
		!st.Readiness.Index.Ready || !st.Readiness.Blobs.Ready || st.LastGC.Status != "succeeded" {
		t.Errorf("stats: %+v", st)
	}
	// The video is stored once and referenced by two asset versions.
	if st.Totals.Collections != 1 || st.Totals.Units != 1 || st.Totals.Assets != 2 || st.Totals.Versions != 4 ||
		st.Totals.Referenced-st.Totals.Stored != 300000 {
		t.Errorf("totals: %+v", st.Totals)
	}
	s.call(t, readToken, "GET", "/api/v1/stats", "", nil, &st)
	if st.Access != "read" {
		t.Errorf("stats with the read token: access %q, want read", st.Access)
	}
	var cs struct{ Units, Assets, Bytes int64 }
	s.call(t, readToken, "GET", "/api/v1/collections/"+sd.collection+"/stats", "", nil, &cs)
	if cs.Units != 1 || cs.Assets != 2 || cs.Bytes != 600000+int64(len(sd.olx)) {
		t.Errorf("collection stats: %+v", cs)
	}
}

// chromium finds the browser: BLOCKSTORE_CHROMIUM, else chromium on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BLOCKSTORE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "Chromium", errors.New("no chromium on PATH: apt-get install chromium (make test does)"))
	return ""
}

// browser starts a headless Chromium with a fresh profile and none of its
// own network traffic, and records the URL of every request the page makes.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	urls []string
	errs []string
	// polls are the change feed's long-polls in flight, by request id;
	// pollCancelled receives one when the page cancels one.
	polls         map[network.RequestID]bool
	pollCancelled chan struct{}
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("disable-features", "OptimizationHints,MediaRouter,Translate"),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	b := &browser{ctx: bctx, polls: map[network.RequestID]bool{}, pollCancelled: make(chan struct{}, 1)}
	// Listen starts the browser; chromedp enables the network domain of
	// the tab, so every request the page makes is an event here.
	err := chromedp.Listen(bctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.urls = append(b.urls, ev.Request.URL)
			if strings.Contains(ev.Request.URL, "/api/v1/changes?") && strings.Contains(ev.Request.URL, "wait=") {
				b.polls[ev.RequestID] = true
			}
		case *network.EventLoadingFailed:
			if b.polls[ev.RequestID] && ev.Canceled {
				select {
				case b.pollCancelled <- struct{}{}:
				default:
				}
			}
		case *runtime.EventExceptionThrown:
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			b.errs = append(b.errs, msg)
		}
	})
	if err != nil {
		testenv.Unavailable(t, "Chromium", err)
	}
	return b
}

// run runs the steps in the page, failing the test on the first error.
func (b *browser) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatalf("%s: %v (script errors: %v)\npage: %s", what, err, b.scriptErrors(), b.pageText())
	}
}

// pageText is the page's text, to say where a wait failed.
func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.location.href + "\n" + document.body.innerText`))
	if err != nil {
		return err.Error()
	}
	return s
}

// get runs one step that returns a value.
func get[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		t.Fatalf("%s: %v (script errors: %v)", what, err, b.scriptErrors())
	}
	return v
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func (b *browser) scriptErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// waitText waits until the element sel exists and its text holds want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want)
	poll := chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(time.Minute))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := poll(ctx, t); err != nil {
			return chromedp.Void{}, fmt.Errorf("wait for %q in %s: %w", want, sel, err)
		}
		return chromedp.Void{}, nil
	}
}

// waitChange waits, up to timeout, until a row of the Changes view matching
// rowSel (within its body) shows event for the unit id at version.
func waitChange(rowSel, id, event, version string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`[...document.querySelectorAll("#changes-list tbody > %s")].some(r =>
		r.querySelector('a[href^="#/unit/%s"]') && r.cells[1].textContent === %q && r.cells[4].textContent === %q)`,
		rowSel, id, event, version)
	poll := chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := poll(ctx, t); err != nil {
			return chromedp.Void{}, fmt.Errorf("wait %s for the change %s %s %s: %w", timeout, id, event, version, err)
		}
		return chromedp.Void{}, nil
	}
}

// login answers the token form the page opens on a 401.
func login(tok string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(css("#token-input")),
		chromedp.SendKeys(css("#token-input"), tok),
		chromedp.Click(css(`#token-form button[type="submit"]`)),
	)
}

// TestBrowser drives the console in headless Chromium against a real
// server: the overview, a unit's OLX, a dry run and a sweep with the write
// token, disabled buttons and the change feed (followed live) with the read
// token, and no request to another host throughout.
func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t)
	sd := s.seed(t)

	b.run(t, "overview with the write token",
		chromedp.Navigate(s.url+"/ui/"),
		login(writeToken),
		waitText("#total-collections", "1"),
		waitText("#collections", "Intro to Physics"),
		waitText("#last-gc-status", "swept"),
	)
	text := get(t, b, "storage panel", chromedp.TextContent(css("#storage")))
	// 300,000 bytes of video referenced twice, stored once.
	for _, want := range []string{"KiB", "Dedup ratio", "293\u00a0KiB"} {
		if !strings.Contains(text, want) {
			t.Errorf("storage panel %q lacks %q", text, want)
		}
	}
	b.run(t, "the collection's row", waitText("#collections", "586\u00a0KiB"))

	if os.Getenv("BLOCKSTORE_UPDATE_SCREENSHOT") != "" {
		b.screenshot(t, "console.png", 1280, 900)
		b.screenshot(t, "console-390.png", 390, 844)
	}
	b.run(t, "overview at 390 px",
		chromedp.EmulateViewport(390, 844),
		chromedp.Reload(),
		waitText("#total-collections", "1"),
	)
	overflow := get(t, b, "page width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	b.run(t, "back to 1280 px", chromedp.EmulateViewport(1280, 900))
	if overflow {
		t.Error("at 390 px the page is wider than the screen")
	}

	b.run(t, "a unit's OLX",
		chromedp.Navigate(s.url+"/ui/#/collection/"+sd.collection),
		waitText("#units", "Lesson 1"),
		chromedp.Click(css("#units a")),
		waitText("#olx", "How long does a stone take"),
		waitText("#links", sd.asset[:8]),
		waitText("#history", "v1"),
	)
	b.run(t, "an asset's linked-by",
		chromedp.Navigate(s.url+"/ui/#/asset/"+sd.asset),
		waitText("#linked-by", "Lesson 1"),
	)

	b.run(t, "dry run",
		chromedp.Navigate(s.url+"/ui/#/gc"),
		waitText("#runs", "swept"),
		chromedp.Click(css("#gc-dry-run")),
		waitText("#gc-report", "Dry run report"),
		waitText("#report-blobs", "0"),
	)
	b.run(t, "sweep after confirmation",
		chromedp.Click(css("#gc-sweep")),
		waitText("#gc-report", "The dry run found"),
		chromedp.Click(css("#gc-confirm")),
		waitText("#gc-report", "Sweep finished"),
	)

	b.run(t, "read token",
		chromedp.Click(css("#token-change")),
		login(readToken),
		waitText("#access", "read-only"),
		waitText("#gc-why", "read-only"),
	)
	disabled := get(t, b, "buttons", chromedp.Evaluate[bool](`document.querySelector("#gc-sweep").disabled && document.querySelector("#gc-dry-run").disabled`))
	why := get(t, b, "reason", chromedp.TextContent(css("#gc-why")))
	if !disabled || !strings.Contains(why, "read-only") {
		t.Errorf("with the read token: buttons disabled %v, reason %q", disabled, why)
	}

	// Still with the read token, which may follow the feed.
	b.run(t, "changes, from the root page",
		chromedp.Navigate(s.url+"/#/changes"),
		waitChange("tr", sd.unit, "created", "v1", time.Minute),
		waitChange("tr", sd.unit, "published", "v2", time.Minute),
		waitText("#changes-list", "Lesson 1"), // the entity's name, resolved
	)
	// A reload would drop this mark: the new row must come without one.
	get(t, b, "mark the page", chromedp.Evaluate[bool](`window.consoleTestMark = true`))
	b.run(t, "follow",
		chromedp.Click(css("#changes-follow")),
		waitText("#changes-status", "waiting for the next change"),
	)
	s.postJSON(t, "/api/v1/units/"+sd.unit+"/versions", map[string]any{"olx": "<problem>third</problem>"}, nil)
	b.run(t, "a version committed while the page waits",
		waitChange("tr:first-child", sd.unit, "published", "v3", 10*time.Second),
	)
	if !get(t, b, "no reload", chromedp.Evaluate[bool](`window.consoleTestMark === true`)) {
		t.Error("the page reloaded to show the new change")
	}
	// Within the page (a hash change, not a navigation that would end every
	// request anyway): the view itself must end its long-poll.
	get(t, b, "leave the followed view", chromedp.Evaluate[bool](`(location.hash = "#/collection/`+sd.collection+`") !== ""`))
	b.run(t, "the collection's page", waitText("#units", "Lesson 1"))
	select {
	case <-b.pollCancelled:
	case <-time.After(10 * time.Second):
		t.Error("leaving the Changes view did not cancel its long-poll")
	}
	b.run(t, "one collection's changes",
		chromedp.Click(css("#collection-changes")),
		waitChange("tr", sd.unit, "created", "v1", time.Minute),
	)

	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("script errors: %v", errs)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.urls) < 10 {
		t.Fatalf("only %d requests recorded: %v", len(b.urls), b.urls)
	}
	for _, raw := range b.urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("request to %q", raw)
			continue
		}
		if u.Scheme == "data" || u.Scheme == "blob" {
			continue // never leaves the page
		}
		if u.Host != s.host {
			t.Errorf("request to another host: %s", raw)
		}
	}
}

// screenshot saves the whole page at width×height to docs/NAME.
func (b *browser) screenshot(t *testing.T, name string, width, height int64) {
	t.Helper()
	b.run(t, "screenshot "+name,
		chromedp.EmulateViewport(width, height),
		chromedp.Reload(),
		waitText("#last-gc-status", "swept"),
		waitText("#collections", "Intro to Physics"),
	)
	png := get(t, b, "screenshot "+name, chromedp.FullScreenshot(100))
	b.run(t, "back to 1280 px", chromedp.EmulateViewport(1280, 900))
	path := filepath.Join("..", "..", "docs", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

package apitest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// v1 is the base path of every API route.
const v1 = "/api/v1"

// Run runs the contract suite of API.md against servers that newServer
// starts. newServer returns the base URL ("http://127.0.0.1:port", no path)
// of a fresh, empty Blockstore that stays up until t ends; the suite calls it
// once per section that needs a clean slate.
func Run(t *testing.T, newServer func(t *testing.T) (baseURL string)) {
	fresh := func(t *testing.T) *api {
		t.Helper()
		base := strings.TrimRight(newServer(t), "/")
		if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
			t.Fatalf("newServer returned %q, want an http:// base URL", base)
		}
		return newAPI(t, base)
	}
	for _, s := range sections {
		t.Run(s.name, func(t *testing.T) { s.run(t, fresh) })
	}
}

// sections are the parts of the suite, one per part of API.md (and a few
// cross-cutting ones); each gets its own server or servers.
var sections = []struct {
	name string
	run  func(t *testing.T, fresh func(*testing.T) *api)
}{
	{"conventions", testConventions},
	{"blobs", testBlobs},
	{"collections", testCollections},
	{"units", testUnits},
	{"assets", testAssets},
	{"resolve", testResolve},
	{"pagination", testPagination},
	{"retries", testRetries},
	{"limits", testLimits},
	{"unicode", testUnicode},
	{"hostile", testHostile},
	{"concurrency", testConcurrency},
	{"operations", testOperations},
	{"changes", testChanges},
}

// J is a JSON object to send.
type J = map[string]any

// rawJSON is a request body sent exactly as given, as application/json.
type rawJSON []byte

// chunked is a request body streamed with Transfer-Encoding: chunked (no
// Content-Length), as an uploader that does not know the size sends it.
type chunked struct{ r io.Reader }

// api is a client of one server.
type api struct {
	base string
	hc   *http.Client
}

func newAPI(t *testing.T, base string) *api {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true, // see the server's own Content-Length and bytes
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &api{
		base: base,
		hc: &http.Client{
			Transport: tr,
			Timeout:   2 * time.Minute,
			// The contract says the server never redirects: observe it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// reply is one answer of the server.
type reply struct {
	method, target string
	status         int
	header         http.Header
	body           []byte
}

// do sends method to target (a request-URI sent exactly as written: path and
// query, escaped by the caller) with body and header pairs ("Name", "value",
// …), and reads the whole answer. body is nil, rawJSON, []byte (raw bytes,
// no Content-Type unless a header pair gives one), chunked, or any other value,
// which is marshalled as JSON.
func (a *api) do(t testing.TB, method, target string, body any, headers ...string) *reply {
	t.Helper()
	r, err := a.send(method, target, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do for goroutines: it returns what do would fail the test with.
func (a *api) send(method, target string, body any, headers ...string) (*reply, error) {
	var rd io.Reader
	ctype := ""
	length := int64(0)
	switch b := body.(type) {
	case nil:
	case rawJSON:
		rd, ctype, length = bytes.NewReader(b), "application/json", int64(len(b))
	case []byte:
		rd, length = bytes.NewReader(b), int64(len(b))
	case chunked:
		rd, length = b.r, -1
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("marshal request body for %s %s: %w", method, target, err)
		}
		rd, ctype, length = bytes.NewReader(j), "application/json", int64(len(j))
	}
	req, err := http.NewRequest(method, a.base+"/", rd)
	if err != nil {
		return nil, fmt.Errorf("new request %s %s: %w", method, shorten(target), err)
	}
	// Opaque makes the client send the request-URI byte for byte, so the
	// suite controls every escape (and can send hostile ones).
	p, q, hasQuery := strings.Cut(target, "?")
	req.URL.Opaque = p
	req.URL.RawQuery = q
	req.URL.ForceQuery = hasQuery && q == ""
	req.ContentLength = length
	if length == 0 {
		req.Body = http.NoBody
		req.GetBody = nil
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, shorten(target), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, shorten(target), err)
	}
	return &reply{method: method, target: target, status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (a *api) get(t testing.TB, target string, headers ...string) *reply {
	t.Helper()
	return a.do(t, http.MethodGet, target, nil, headers...)
}

func (a *api) head(t testing.TB, target string, headers ...string) *reply {
	t.Helper()
	return a.do(t, http.MethodHead, target, nil, headers...)
}

func (a *api) post(t testing.TB, target string, body any, headers ...string) *reply {
	t.Helper()
	return a.do(t, http.MethodPost, target, body, headers...)
}

func (a *api) put(t testing.TB, target string, body any, headers ...string) *reply {
	t.Helper()
	return a.do(t, http.MethodPut, target, body, headers...)
}

func (a *api) patch(t testing.TB, target string, body any, headers ...string) *reply {
	t.Helper()
	return a.do(t, http.MethodPatch, target, body, headers...)
}

func (a *api) del(t testing.TB, target string, headers ...string) *reply {
	t.Helper()
	return a.do(t, http.MethodDelete, target, nil, headers...)
}

// String describes the exchange for failure messages.
func (r *reply) String() string {
	b := r.body
	const max = 600
	more := ""
	if len(b) > max {
		b, more = b[:max], fmt.Sprintf("… (%d bytes)", len(r.body))
	}
	return fmt.Sprintf("%s %s → %d %q%s", r.method, shorten(r.target), r.status, b, more)
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + fmt.Sprintf("…(%d chars)", len(s))
	}
	return s
}

// want fails the test at once unless the status is one of statuses: for
// steps the rest of a test builds on.
func (r *reply) want(t testing.TB, statuses ...int) *reply {
	t.Helper()
	if !slices.Contains(statuses, r.status) {
		t.Fatalf("want status %v: %s", statuses, r)
	}
	return r
}

// expect reports an error unless the status is one of statuses.
func (r *reply) expect(t testing.TB, statuses ...int) bool {
	t.Helper()
	if !slices.Contains(statuses, r.status) {
		t.Errorf("want status %v: %s", statuses, r)
		return false
	}
	return true
}

// errorCodes are the error codes of API.md by status.
var errorCodes = map[int]string{
	400: "bad_request",
	401: "unauthorized",
	403: "forbidden",
	404: "not_found",
	405: "method_not_allowed",
	409: "conflict",
	413: "too_large",
	416: "range_not_satisfiable",
	422: "hash_mismatch",
	500: "internal",
	503: "unavailable",
}

// wantError checks that the answer is an error with one of statuses, in the
// JSON shape {"error": {"code", "message"}} with the code of its status (no
// body for HEAD). It never accepts a redirect or a 500.
func (r *reply) wantError(t testing.TB, statuses ...int) bool {
	t.Helper()
	if !slices.Contains(statuses, r.status) {
		t.Errorf("want error status %v: %s", statuses, r)
		return false
	}
	return r.errorShape(t)
}

// errorShape checks the JSON error shape of an error answer, whatever its status.
func (r *reply) errorShape(t testing.TB) bool {
	t.Helper()
	if r.method == http.MethodHead {
		if len(r.body) != 0 {
			t.Errorf("HEAD answered with a body: %s", r)
			return false
		}
		return true
	}
	if !isJSONType(r.header.Get("Content-Type")) {
		t.Errorf("error Content-Type %q, want application/json: %s", r.header.Get("Content-Type"), r)
		return false
	}
	var e struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil || e.Error.Code == nil || e.Error.Message == nil {
		t.Errorf(`want {"error": {"code", "message"}}: %s`, r)
		return false
	}
	if want, ok := errorCodes[r.status]; !ok || *e.Error.Code != want {
		t.Errorf("error code %q with status %d, want %q: %s", *e.Error.Code, r.status, want, r)
		return false
	}
	if strings.TrimSpace(*e.Error.Message) == "" {
		t.Errorf("error message is empty: %s", r)
		return false
	}
	return true
}

// sane checks what every answer must be, whatever the request: no redirect,
// no 500, and the JSON error shape on every error.
func (r *reply) sane(t testing.TB) bool {
	t.Helper()
	switch {
	case r.status >= 300 && r.status < 400 && r.status != http.StatusNotModified:
		t.Errorf("the server redirected: %s (Location %q)", r, r.header.Get("Location"))
		return false
	case r.status >= 500:
		t.Errorf("server error: %s", r)
		return false
	case r.status >= 400:
		return r.errorShape(t)
	}
	return true
}

// value decodes the answer as JSON (numbers kept exact), failing the test
// when it is not JSON.
func (r *reply) value(t testing.TB) any {
	t.Helper()
	if !isJSONType(r.header.Get("Content-Type")) {
		t.Fatalf("Content-Type %q, want application/json: %s", r.header.Get("Content-Type"), r)
	}
	v, err := decode(r.body)
	if err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, r)
	}
	return v
}

func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// obj decodes the answer as a JSON object.
func (r *reply) obj(t testing.TB) object {
	t.Helper()
	m, ok := r.value(t).(map[string]any)
	if !ok {
		t.Fatalf("want a JSON object: %s", r)
	}
	return m
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

// object is a decoded JSON object of an answer.
type object map[string]any

func (o object) has(key string) bool { _, ok := o[key]; return ok }

// isNull reports whether key is present with the value null.
func (o object) isNull(key string) bool { v, ok := o[key]; return ok && v == nil }

func (o object) str(key string) string { s, _ := o[key].(string); return s }

// int is the integer under key; ok is false when it is absent or not an integer.
func (o object) int(key string) (int64, bool) {
	n, ok := o[key].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// ver is the "version" field: the number, 0 for null (the draft), -1 when it
// is absent or not a positive integer.
func (o object) ver() int64 {
	if o.isNull("version") {
		return 0
	}
	if n, ok := o.int("version"); ok && n > 0 {
		return n
	}
	return -1
}

func (o object) bool(key string) (value, ok bool) { value, ok = o[key].(bool); return value, ok }

func (o object) obj(key string) object { m, _ := o[key].(map[string]any); return m }

// list is the array under key; ok is false when it is absent or not an array.
func (o object) list(key string) (l []any, ok bool) { l, ok = o[key].([]any); return l, ok }

// objs is the array of objects under key (nil when it is not one).
func (o object) objs(key string) []object {
	l, _ := o[key].([]any)
	out := make([]object, 0, len(l))
	for _, v := range l {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		out = append(out, m)
	}
	return out
}

// strs is the array of strings under key.
func (o object) strs(key string) []string {
	l, _ := o[key].([]any)
	out := make([]string, 0, len(l))
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

func (o object) String() string { b, _ := json.Marshal(o); return string(b) }

// eq reports an error when got is not want.
func eq[T comparable](t testing.TB, what string, got, want T) bool {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
		return false
	}
	return true
}

// eqSlice reports an error when got is not want, element by element.
func eqSlice[T comparable](t testing.TB, what string, got, want []T) bool {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
		return false
	}
	return true
}

// sameSet reports an error when got and want differ as sets (or in length).
func sameSet(t testing.TB, what string, got, want []string) bool {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s = %v, want (in any order) %v", what, got, want)
		return false
	}
	return true
}

// hashOf is the BLAKE3-256 hash of b as the API writes it.
func hashOf(b []byte) string {
	s := blake3.Sum256(b)
	return hex.EncodeToString(s[:])
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// fieldsOf are the fields API.md gives each kind of object.
var fieldsOf = map[string][]string{
	"collection": {"uuid", "version", "created_at", "name", "description", "owner", "author", "license", "garbage_collect"},
	"unit":       {"uuid", "collection", "name", "version", "created_at", "hash", "size", "links", "garbage_collect"},
	"asset":      {"uuid", "collection", "version", "created_at", "name", "media_type", "hash", "size", "garbage_collect"},
}

// shape checks that o is a well-formed object of kind: every documented field,
// a lower-case RFC 4122 uuid, a positive version or null, an RFC 3339 UTC
// time, a lower-case hash, a size.
func shape(t testing.TB, kind string, o object) bool {
	t.Helper()
	ok := true
	for _, f := range fieldsOf[kind] {
		if !o.has(f) {
			t.Errorf("%s object lacks %q: %v", kind, f, o)
			ok = false
		}
	}
	if !uuidRE.MatchString(o.str("uuid")) {
		t.Errorf("%s uuid %q is not a lower-case RFC 4122 UUID", kind, o["uuid"])
		ok = false
	}
	if kind != "collection" && !uuidRE.MatchString(o.str("collection")) {
		t.Errorf("%s collection %q is not a lower-case RFC 4122 UUID", kind, o["collection"])
		ok = false
	}
	if o.ver() < 0 || (kind == "collection" && o.ver() == 0) {
		t.Errorf("%s version %v is not a positive integer (or null for a draft)", kind, o["version"])
		ok = false
	}
	if ts := o.str("created_at"); !isUTC3339(ts) {
		t.Errorf("%s created_at %q is not RFC 3339 in UTC", kind, o["created_at"])
		ok = false
	}
	if _, isBool := o.bool("garbage_collect"); !isBool {
		t.Errorf("%s garbage_collect %v is not a boolean", kind, o["garbage_collect"])
		ok = false
	}
	if _, isStr := o["name"].(string); !isStr {
		t.Errorf("%s name %v is not a string", kind, o["name"])
		ok = false
	}
	if kind != "collection" {
		if !hashRE.MatchString(o.str("hash")) {
			t.Errorf("%s hash %q is not 64 lower-case hex digits", kind, o["hash"])
			ok = false
		}
		if n, isInt := o.int("size"); !isInt || n < 0 {
			t.Errorf("%s size %v is not a non-negative integer", kind, o["size"])
			ok = false
		}
	}
	if kind == "unit" {
		if _, isList := o.list("links"); !isList && !o.isNull("links") {
			t.Errorf("unit links %v is not a list", o["links"])
			ok = false
		}
	}
	return ok
}

func isUTC3339(s string) bool {
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return false
	}
	_, off := ts.Zone()
	return off == 0
}

// page checks that the answer is a list page: {"items": [...]} with
// next_cursor absent or a non-empty string. It returns the items and cursor.
func (r *reply) page(t testing.TB) (items []object, cursor string) {
	t.Helper()
	r.want(t, http.StatusOK)
	o := r.obj(t)
	l, ok := o.list("items")
	if !ok {
		t.Fatalf(`a list answer needs "items" as an array: %s`, r)
	}
	for _, v := range l {
		m, isObj := v.(map[string]any)
		if !isObj {
			t.Fatalf("list item %v is not an object: %s", v, r)
		}
		items = append(items, m)
	}
	if o.has("next_cursor") {
		c, isStr := o["next_cursor"].(string)
		if !isStr || c == "" {
			t.Fatalf("next_cursor must be absent or a non-empty string: %s", r)
		}
		cursor = c
	}
	return items, cursor
}

// withQuery appends query (already escaped) to target.
func withQuery(target, query string) string {
	if strings.Contains(target, "?") {
		return target + "&" + query
	}
	return target + "?" + query
}

// walk reads every page of the list at target with the given page size (0:
// the server's default) and returns all items. It checks that each page holds
// at most limit items, that only the last page lacks next_cursor, and that a
// page announced by a cursor is never empty.
func (a *api) walk(t testing.TB, target string, limit int) []object {
	t.Helper()
	var all []object
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5000 {
			t.Fatalf("%s: more than 5000 pages; the cursor does not advance", target)
		}
		u := target
		if limit > 0 {
			u = withQuery(u, "limit="+strconv.Itoa(limit))
		}
		if cursor != "" {
			u = withQuery(u, "cursor="+url.QueryEscape(cursor))
		}
		r := a.get(t, u)
		items, next := r.page(t)
		if limit > 0 && len(items) > limit {
			t.Errorf("page of %s holds %d items, over limit=%d", u, len(items), limit)
		}
		if cursor != "" && len(items) == 0 {
			t.Errorf("a next_cursor led to an empty page (next_cursor must be absent on the last page): %s", r)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// uuids are the "uuid" fields of objs.
func uuids(objs []object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.str("uuid")
	}
	return out
}

// versions are the "version" fields of objs (0 for null).
func versions(objs []object) []int64 {
	out := make([]int64, len(objs))
	for i, o := range objs {
		out[i] = o.ver()
	}
	return out
}

// snapshot is what a set of GETs answered, to prove later that a rejected
// request changed nothing.
type snapshot struct {
	targets []string
	replies []*reply
}

func (a *api) snap(t testing.TB, targets ...string) snapshot {
	t.Helper()
	s := snapshot{targets: targets}
	for _, u := range targets {
		s.replies = append(s.replies, a.get(t, u))
	}
	return s
}

// unchanged reports an error for each GET of s that now answers otherwise.
func (a *api) unchanged(t testing.TB, s snapshot, after string) {
	t.Helper()
	for i, u := range s.targets {
		before, now := s.replies[i], a.get(t, u)
		if before.status == now.status && bytes.Equal(before.body, now.body) {
			continue
		}
		if before.status == now.status {
			bv, err1 := decode(before.body)
			nv, err2 := decode(now.body)
			if err1 == nil && err2 == nil && reflect.DeepEqual(bv, nv) {
				continue
			}
		}
		t.Errorf("after %s, GET %s changed:\nbefore: %s\nnow:    %s", after, u, before, now)
	}
}

// --- fixtures: each fails the test at once when the server refuses ---

func (a *api) newCollection(t testing.TB, fields J) object {
	t.Helper()
	o := a.post(t, v1+"/collections", fields).want(t, http.StatusCreated).obj(t)
	shape(t, "collection", o)
	return o
}

// newUnit creates a unit in coll with body's fields (collection added).
func (a *api) newUnit(t testing.TB, coll string, body J) object {
	t.Helper()
	b := J{"collection": coll}
	for k, v := range body {
		b[k] = v
	}
	o := a.post(t, v1+"/units", b).want(t, http.StatusCreated).obj(t)
	shape(t, "unit", o)
	return o
}

func (a *api) newUnitVersion(t testing.TB, unit string, body J) object {
	t.Helper()
	o := a.post(t, v1+"/units/"+unit+"/versions", body).want(t, http.StatusCreated).obj(t)
	shape(t, "unit", o)
	return o
}

// newAsset uploads data as a new asset of coll named name with Content-Type
// ctype ("" sends none).
func (a *api) newAsset(t testing.TB, coll, name, ctype string, data []byte) object {
	t.Helper()
	u := v1 + "/assets?collection=" + coll + "&name=" + url.QueryEscape(name)
	o := a.post(t, u, data, "Content-Type", ctype).want(t, http.StatusCreated).obj(t)
	shape(t, "asset", o)
	return o
}

// putBlob stores data under its hash.
func (a *api) putBlob(t testing.TB, data []byte) string {
	t.Helper()
	h := hashOf(data)
	a.put(t, v1+"/blobs/"+h, data).want(t, http.StatusCreated, http.StatusOK)
	return h
}

// link is a link to send: version 0 is null (follows the latest).
func link(target, kind string, version int64) J {
	l := J{"target": target}
	if kind != "" {
		l["kind"] = kind
	}
	if version > 0 {
		l["version"] = version
	} else {
		l["version"] = nil
	}
	return l
}

// linksOf are the links of a unit object as "target kind version" strings
// (version "null" when unpinned), for comparison as sets.
func linksOf(o object) []string {
	var out []string
	for _, l := range o.objs("links") {
		v := "null"
		if n, ok := l.int("version"); ok {
			v = strconv.FormatInt(n, 10)
		}
		out = append(out, l.str("target")+" "+l.str("kind")+" "+v)
	}
	return out
}

// linkStr is the form linksOf gives a link.
func linkStr(target, kind string, version int64) string {
	v := "null"
	if version > 0 {
		v = strconv.FormatInt(version, 10)
	}
	return target + " " + kind + " " + v
}

// randomUUID is a syntactically valid version 4 UUID that names nothing.
func randomUUID(i int) string {
	var b [16]byte
	s := blake3.Sum256([]byte(fmt.Sprintf("apitest-uuid-%d-%d", i, time.Now().UnixNano())))
	copy(b[:], s[:16])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// pattern is n deterministic bytes that differ with seed.
func pattern(seed string, n int) []byte {
	out := make([]byte, 0, n+32)
	x := blake3.New()
	x.Write([]byte(seed))
	d := x.Digest()
	buf := make([]byte, 4096)
	for len(out) < n {
		d.Read(buf)
		out = append(out, buf...)
	}
	return out[:n]
}

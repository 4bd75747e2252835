package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/httpapi"
)

// static holds the page, its style sheet and its script: no build step, no
// file from anywhere else.
//
//go:embed static
var static embed.FS

// Paths of the console, in httprouter syntax: the page at /, /ui and /ui/
// (the same page: the server never redirects), its files at /ui/{file}.
const (
	PathRoot   = "/"
	PathUIBare = "/ui"
	PathUI     = "/ui/"
	PathFile   = "/ui/:file"
)

// IsStatic reports whether a request for path is one of the console's
// files, which hold no data and are served without a token.
func IsStatic(method, p string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	return p == PathRoot || p == PathUIBare || p == PathUI || strings.HasPrefix(p, PathUI) && !strings.Contains(p[len(PathUI):], "/")
}

// Routes returns the console's routes (GET; the API adds HEAD).
func Routes() []httpapi.Route {
	h := http.HandlerFunc(serve)
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: PathRoot, Handler: h},
		{Method: http.MethodGet, Pattern: PathUIBare, Handler: h},
		{Method: http.MethodGet, Pattern: PathUI, Handler: h},
		{Method: http.MethodGet, Pattern: PathFile, Handler: h},
	}
}

// contentTypes are the types of the files under static; a file of another
// extension is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
}

// securityPolicy keeps the page from loading or sending anything to another
// host, even if a stored name or OLX held markup: scripts, styles and
// requests go to this server only.
const securityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func serve(w http.ResponseWriter, r *http.Request) {
	name := httprouter.ParamsFromContext(r.Context()).ByName("file")
	if name == "" {
		name = "index.html"
	}
	ctype, ok := contentTypes[path.Ext(name)]
	var body []byte
	if ok {
		var err error
		body, err = fs.ReadFile(static, "static/"+name)
		ok = err == nil
	}
	if !ok {
		notFound(w, r, name)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	// The files change with the binary: revalidate, never use a stale copy.
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", securityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// notFound answers in the API's error shape.
func notFound(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	if r.Method == http.MethodHead {
		return
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code = "not_found"
	body.Error.Message = "the console has no file " + strings.TrimSpace(name) + "; open /ui/"
	_ = json.NewEncoder(w).Encode(body)
}

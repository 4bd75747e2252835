package app

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/httpapi/console"
)

// Tokens are the bearer tokens a server requires. With Write empty the API
// is open (the default, for a private network); with Write set every route
// but the operations probes needs a token. Read may call what API.md lists
// for read-only consumers: every GET and HEAD, POST /api/v1/resolve and
// POST /api/v1/blobs/missing.
type Tokens struct {
	Write string // may do everything
	Read  string // read-only
}

// Enabled reports whether tokens are required.
func (t Tokens) Enabled() bool { return t.Write != "" || t.Read != "" }

// openPaths need no token: load balancers and Prometheus poll them.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// readOnlyPOST are the POST routes a read-only token may call.
var readOnlyPOST = map[string]bool{"/api/v1/resolve": true, "/api/v1/blobs/missing": true}

// requireTokens wraps h with the bearer-token check. Tokens are compared in
// constant time (over their SHA-256, so that the length leaks nothing
// either); a missing or unknown token is 401, a read token on a write is 403.
func requireTokens(h http.Handler, t Tokens) http.Handler {
	if !t.Enabled() {
		return h
	}
	digest := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	write, read := digest(t.Write), digest(t.Read)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The console's files hold no data; its data calls carry the token.
		if openPaths[r.URL.Path] || console.IsStatic(r.Method, r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="blockstore"`)
			authError(w, r, http.StatusUnauthorized, "unauthorized", "a bearer token is required")
			return
		}
		got := digest(token)
		isWrite := t.Write != "" && subtle.ConstantTimeCompare(got[:], write[:]) == 1
		isRead := t.Read != "" && subtle.ConstantTimeCompare(got[:], read[:]) == 1
		switch {
		case isWrite:
		case isRead:
			r = r.WithContext(httpapi.WithAccess(r.Context(), httpapi.AccessRead))
			if !(r.Method == http.MethodGet || r.Method == http.MethodHead ||
				(r.Method == http.MethodPost && readOnlyPOST[r.URL.Path])) {
				authError(w, r, http.StatusForbidden, "forbidden", "this token may only read")
				return
			}
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="blockstore", error="invalid_token"`)
			authError(w, r, http.StatusUnauthorized, "unauthorized", "the bearer token is not valid")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func authError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, msg
	_ = json.NewEncoder(w).Encode(body)
}

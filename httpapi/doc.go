// Package httpapi serves the Blockstore HTTP API, version 1
// (../shared/API.md), over the refs service, on julienschmidt/httprouter.
//
// New returns the handler of every endpoint; NewServer wraps a handler in an
// http.Server with the limits a server on a private network needs (header,
// idle and minimum-rate timeouts, no total timeout). The package knows the
// refs and gc services and the index and cas sentinels, never a backend.
//
// # Glossary
//
//   - Route: a method and an httprouter pattern. Wildcards are named alike
//     wherever they sit (:uuid, :n, :hash, :id) because httprouter refuses
//     two names at one position; {n} (a version number or "draft") is parsed
//     by the handler.
//   - Handler: decodes the request, calls one refs.Service (or GC) method,
//     encodes the answer. An error it returns is answered by writeError.
//   - Answer: the status and JSON body of a creating request, rendered by the
//     handler and stored by refs with its Idempotency-Key (refs.Answer).
//   - Content: bytes served with http.ServeContent (blobs, asset content,
//     OLX): Range, ETag ("<hash>") and If-None-Match come from there.
//   - Minimum rate: a client must move MinRateBytes of a request or response
//     body in each MinRateWindow, else its connection is closed.
//
// # Invariants
//
//   - Every error has the documented shape {"error": {"code", "message"}}
//     (no body for HEAD) and its status comes from one function, errorOf,
//     which maps the sentinels of index, cas, refs, gc and this package.
//     Unknown paths are 404 and known paths with other methods 405, in the
//     same shape; the router never redirects.
//   - Every GET route answers HEAD with the same status and headers.
//   - Blob and asset bytes stream in both directions: request bodies go to
//     the blob store through io.Copy-like loops, responses through
//     http.ServeContent; no handler holds a whole upload in memory. JSON
//     bodies are read whole, up to Options.MaxJSONBytes.
//   - Hash-addressed bytes (GET /blobs/{hash}) carry
//     "Cache-Control: public, max-age=31536000, immutable"; name-addressed
//     bytes (…/olx, …/content) change with new versions and carry no-cache.
//   - A JSON body must be valid UTF-8 without lone surrogate escapes: what
//     a client sends in a string (OLX) is stored byte for byte.
package httpapi

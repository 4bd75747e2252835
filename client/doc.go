// Package client is a typed Go client of Blockstore's HTTP API
// (../shared/API.md, version 1): every endpoint, context first, streaming
// uploads and downloads, retries that never duplicate a write.
//
// The importer, the benchmarks and the tests use it; so can any Go program
// that talks to a Blockstore server.
//
// # Glossary
//
//   - Client: one server's base URL with its options (token, retries,
//     backoff). Safe for concurrent use by many goroutines.
//   - At: which version a path names: Latest (the bare uuid), Draft, or
//     Version(n).
//   - Body: the bytes of an upload and how to send them again. A Body made
//     from an io.ReadSeeker, a []byte or an opener function is re-sent on a
//     retry; one made from a plain io.Reader is sent once.
//   - Content: where an asset version's bytes come from: streamed in the
//     request (Body), or a blob already stored (Hash), with an optional Body
//     to upload again when the server no longer has the blob (API.md, Leases).
//   - Page and All: one page of a list, and an iterator over every page.
//   - Error: what the server answered when it said no: status, code and
//     message. errors.Is matches it against the sentinels (ErrNotFound,
//     ErrConflict…) by its code.
//
// # Invariants
//
//   - A request is retried only on a connection error or a 503, at most
//     Options.Retries times, with exponential backoff and jitter, and only
//     when its body can be sent again.
//   - Every POST that creates something carries an Idempotency-Key, random
//     per call and the same on each retry of that call, so a retry after a
//     lost answer gets the first answer and creates nothing more.
//   - A version that names a hash the server no longer has (404) is retried
//     after the bytes are uploaded again with PUT, when the caller gave a
//     Body to upload them from.
//   - Bodies are streamed, never buffered whole; downloads are io.ReadClosers
//     the caller must Close.
//   - The token is sent as "Authorization: Bearer …" and never appears in an
//     error or a log line.
package client

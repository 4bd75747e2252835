// Package apitest is the contract suite of the Blockstore HTTP API: the
// client-observable sentences of API.md, checked over real HTTP against a
// running server. It knows nothing of the server's insides; it speaks only
// HTTP and JSON and computes BLAKE3 hashes itself, so one suite holds every
// deployment (embedded Pebble and a directory, PostgreSQL and MinIO) to the
// same contract.
//
// A deployment's test calls Run with a factory that starts a fresh, empty
// server and returns its base URL:
//
//	func TestContract(t *testing.T) {
//		apitest.Run(t, func(t *testing.T) string { return startServer(t) })
//	}
//
// Glossary:
//   - section: a subtest per part of API.md (conventions, blobs, collections,
//     units, assets, resolve) or per cross-cutting rule (pagination, retries,
//     limits, unicode, hostile requests, concurrency, operations). Each section
//     asks for its own server, so sections never see each other's entities.
//   - snapshot: the answers of a set of GETs taken before a request that must
//     be refused; after the refusal they must answer the same ("a request that
//     fails changes nothing").
//
// Where API.md is silent the suite checks only sanity (no 500, no redirect,
// the JSON error shape), or accepts each reasonable answer:
//   - limit=0, negative or non-numeric limits: 200 or 400;
//   - a link pinned to a version its target lacks: refused (400) or accepted,
//     and then "resolved" is null;
//   - a unit in a collection that does not exist: 400 or 404;
//   - a repeated POST /blobs of stored bytes: 201 or 200;
//   - the media type a replaced draft keeps when media_type is omitted: the
//     published version's or the previous draft's;
//   - Idempotency-Key over 255 characters, keyed retries that overlap in
//     time (201 with the first answer, or 409);
//   - an upper-case UUID in a ref: 400, or answered with "ref" as sent;
//   - NUL or invalid UTF-8 in names, media types and keys (only OLX is fixed);
//   - names that look like paths ("../x"): stored or refused.
//
// It does fix these readings, which follow from API.md's words:
//   - a page that holds the last item has no next_cursor (no empty last page);
//   - the draft is gone once published (…/versions/draft is 404);
//   - "name": "" in a new version clears the name (omitted is not empty);
//   - a deleted entity's name is free again;
//   - list and array fields are JSON arrays, never null, even when empty;
//   - a unit's "olx" appears in resolve only when include_olx is true;
//   - names are unique by their exact bytes (no case folding);
//   - the suite assumes the server runs with its default limits (16 MiB JSON,
//     no upload limit, 1,000 refs, 10,000 hashes) and no tokens.
//
// Invariants the suite holds itself to: every request goes to the loopback
// server it was given; every loop is bounded in count and every request in
// time; the client never follows redirects (the server must never send one),
// and it sends request-URIs byte for byte as written so hostile paths reach
// the server unaltered.
package apitest

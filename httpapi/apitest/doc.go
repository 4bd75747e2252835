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
// Invariants the suite holds itself to: every request goes to the loopback
// server it was given; every loop is bounded in count and every request in
// time; the client never follows redirects (the server must never send one),
// and it sends request-URIs byte for byte as written so hostile paths reach
// the server unaltered.
package apitest

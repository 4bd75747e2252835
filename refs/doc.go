// Package refs is the one place that binds names to content. It resolves
// refs (uuid, uuid@N, uuid@draft) and hashes, and it commits new versions:
// the bytes are stored (or found) in the blob store first, and only then is
// the version written to the index, with its links, in one transaction.
//
// The HTTP API (package httpapi) calls one Service method per request; the
// Service keeps the retry rules of API.md (identical versions create
// nothing, Idempotency-Key), the blob leases, and a cache of small blobs.
//
// # Glossary
//
//   - Blob: bytes stored in the cas.Store under their BLAKE3-256 hash.
//   - Registry: the index's table of blobs (index.Blob), with a state
//     (pending, live, deleting) and a lease. A version may only name a live
//     blob.
//   - Lease: the time a registry row was last renewed (uploads, HEAD,
//     missing-queries). A sweep never deletes a blob whose lease is younger
//     than its grace, even when nothing references it.
//   - Staged upload: bytes written to a cas.Upload whose hash is known
//     (Sum) but which is not yet visible (Commit).
//   - Answer: the status and body of a creating request, stored with its
//     Idempotency-Key so that a retry gets them again.
//   - Fingerprint: the hash of a request's method, path, query and body (for
//     a streamed body, the hash of the bytes stored); a key reused with
//     another fingerprint is a conflict.
//
// # The registry protocol
//
// Every write of bytes follows the index's blob state machine so that a
// sweep (package gc) never deletes bytes it did not claim:
//
//   - Hash known in advance (PUT /blobs/{hash}, OLX): BeginBlob(h) first. A
//     live blob is already stored: the body is still read and verified, and
//     nothing is written. A pending one is written through the cas.Store
//     with the expected hash, then FinishBlob(h, size) makes it live.
//   - Hash not known in advance (POST /blobs, asset bodies): the bytes go to
//     a staged upload; its Sum gives the hash; BeginBlob(h) marks it pending
//     BEFORE Commit makes the bytes visible; FinishBlob makes it live. When
//     BeginBlob says live the staged bytes are discarded.
//   - ErrBlobBusy (a sweep is deleting the blob) is retried with a short
//     backoff for a bounded time, then answered as ErrRetry (503).
//
// # Invariants
//
//   - A version is written only after its blob is live in the registry; the
//     index refuses (ErrBlobMissing) a commit whose blob a sweep claimed. A
//     commit whose bytes the Service still holds (OLX in memory, a staged
//     upload not yet committed) stores them again and retries, a bounded
//     number of times; a streamed body that was already consumed is
//     answered with ErrRetry so that the client sends it again.
//   - The idempotency record of a creating request is written in the same
//     transaction as the write it answers: either both exist or neither.
//   - Cached bytes are always correct: content never changes under a hash,
//     so the cache needs no invalidation, also across replicas.
package refs

// Package cas is Blockstore's content-addressed blob store: bytes are stored
// once, under their BLAKE3-256 hash, and fetched by it.
//
// It follows the portable-type-over-driver shape: Store is what callers use;
// a Backend (package dirstore for a local directory, s3store for S3 and MinIO)
// is the small interface a storage engine implements; castest is the
// conformance suite every backend passes. Argument checks, hash verification,
// error wrapping and metrics live once, in Store; backends trust it.
//
// # Glossary
//
//   - Hash: the BLAKE3-256 digest of a blob's bytes, written as 64 lower-case
//     hex digits. It is the blob's only name.
//   - Blob: the bytes stored under a hash. Blobs never change; they are
//     created, read and deleted.
//   - Upload: a two-phase write (Store.Begin). The caller writes the bytes,
//     Sum ends them and yields the hash and size while nothing is visible yet,
//     Commit makes the blob durable and visible, Cancel discards it.
//   - Expected hash: the hash a writer claims for its bytes (PUT by hash).
//     Bytes that hash otherwise fail with a *MismatchError and store nothing.
//   - Temporary data: partial files, temporary keys and unfinished multipart
//     uploads a backend holds while an upload runs. CleanTemp removes what a
//     crash left behind.
//   - Verified read: Open checks small blobs entirely before it returns and
//     checks larger ones when they are read sequentially to the end.
//
// # Invariants
//
//  1. The bytes under hash H hash to H: Store hashes every byte it writes and
//     commits only under the hash it computed; reads check it again.
//  2. Nothing is visible under a hash before Commit returns nil, and then it
//     is durable (fsync on disk, a completed upload on S3).
//  3. A put that fails, whose bytes do not match the expected hash, that goes
//     over its size limit, or whose context is cancelled, leaves nothing
//     behind: no blob, no temporary data.
//  4. Concurrent puts of the same bytes are safe: each commits the same blob.
//  5. Memory does not grow with blob size: bytes are streamed through fixed
//     buffers (1 MiB in Store, the part size on S3).
package cas

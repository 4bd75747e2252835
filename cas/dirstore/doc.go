// Package dirstore is the cas.Backend that keeps blobs as files in a local
// directory: the embedded default, and what a single machine can keep.
//
// # Layout
//
//	<dir>/ab/cd/abcd…(64 hex digits)   one file per blob, read-only (0444)
//	<dir>/tmp/put-*.tmp                 uploads in progress
//
// The two levels of shard directories (256 × 256) keep directories small.
// The 256 first-level ones are created at Open, the others on first use;
// none is ever removed, so deleting the last blob of a shard leaves an
// empty directory that the next put into it reuses. The directory should
// hold nothing else; Walk ignores names that are not shards or blobs.
//
// # Glossary
//
//   - Shard: the directory <dir>/ab/cd holding the blobs whose hash starts
//     with abcd.
//   - Temp file: an upload's bytes before Commit, in <dir>/tmp on the same
//     filesystem, so that Commit is a rename.
//   - Chunk: 1 MiB of an upload, in an aligned buffer. The first MiB of a
//     blob is written as it comes; past it, full chunks go to the flusher,
//     a goroutine of the upload that writes them (with O_DIRECT from
//     Options.DirectFrom, 8 MiB by default, on) while the next chunk is
//     read and hashed. An upload holds at most three chunks. Blobs written
//     with O_DIRECT are not in the page cache: the first read of them goes
//     to the disk.
//
// # Invariants
//
//   - A blob file appears under its name only by rename(2) of a temp file
//     that was written completely and fdatasynced (O_DIRECT writes too: the
//     device's cache is flushed by it); the shard directory is
//     fsynced after the rename, so a committed blob survives a crash.
//   - A temp file is removed when its upload fails, is cancelled, or its
//     context ends; what a crash leaves is removed by CleanTemp, which the
//     process holding the data directory's lock calls at start.
//   - Bytes are written as they are hashed: at most three chunks of an
//     upload are in memory, whatever its size.
//
// dirstore trusts its caller (cas.Store) for hashes and sizes; use it through
// cas.New.
package dirstore

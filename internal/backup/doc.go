// Package backup copies the embedded deployment (a Pebble index and the
// blobs it needs) while it serves, and brings such a copy back. It owns the
// backup format: the stream that POST /api/v1/backup sends, the directory
// that `blockstore backup DIR` writes and `blockstore restore DIR` reads,
// and MANIFEST.json. The HTTP route is httpapi's; internal/app wires the
// Service over the deployment's stores.
//
// # What a backup holds
//
// A consistent point of the Pebble index (a checkpoint, taken while the
// server keeps serving) and every blob that point needs: each live row of its
// blob registry and each hash one of its versions references (the second
// set lies inside the first unless the index is damaged; both are taken).
// While a backup runs it holds the one-sweep lock (index.Store.TryLockGC), so
// no sweep can delete a blob that the checkpoint names before it is copied;
// a sweep asked for meanwhile is refused as if another sweep ran, and a
// backup asked for while a sweep runs is refused (ErrBusy, 409). Blobs
// written after the checkpoint are not in the backup, nor is anything that
// names them. Pending and deleting registry rows are kept in the index as
// they were but their bytes are not copied: a later sweep settles them as it
// would have.
//
// # The directory
//
//	DIR/index/<file>             the checkpoint's files (Pebble MANIFEST,
//	                             OPTIONS, WAL, tables), as Pebble wrote them
//	DIR/blobs/                   a cas/dirstore blob directory: each blob at
//	                             blobs/ab/cd/<hash>, written and synced by it
//	DIR/MANIFEST.json            written last: what the backup holds
//
// Backups written before the blob directory was a dirstore kept each blob
// at DIR/blobs/ab/<hash>; Restore reads those too.
//
// MANIFEST.json is {"format": "blockstore-backup/1", "created_at",
// "index_files": [{"name", "size", "blake3"}], "blobs", "blob_bytes"}.
//
// # The stream
//
// A tar archive (POSIX, PAX headers where needed) of regular files in this
// order: "index/<file>" for each checkpoint file, "blobs/<hash>" for each
// blob, then "MANIFEST.json", the last entry, with the counts and hashes of
// what came before. A stream that ends without it, or whose entries differ
// from it, is an incomplete backup (ErrIncomplete).
//
// # Invariants
//
//   - MANIFEST.json is written only once every other file has been verified
//     (each blob against its name, each index file against the stream's
//     manifest) and is durable; it is renamed into place and its directory
//     synced. A directory without it is an interrupted backup, and Restore
//     refuses it.
//   - Restore copies the index files into a staging directory beside the
//     target (each checked against its size and BLAKE3), opens the restored
//     index and puts every blob it needs through a cas.Store with its
//     expected hash, then renames the staging directory onto the data
//     directory, which must be absent or empty. An interrupted restore
//     leaves the data directory as it was (and a staging directory named
//     DATA.restoring-… to remove).
//
// PostgreSQL deployments are backed up with the database's and the bucket's
// own tools (see the README): Write refuses them with ErrUnsupported.
package backup

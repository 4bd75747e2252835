// Package s3store is the cas.Backend that keeps blobs in an S3 bucket
// through github.com/minio/minio-go/v7: MinIO and AWS S3 alike. With it the
// servers hold no state of their own and run as replicas over one bucket.
//
// # Layout
//
//	<prefix>blobs/<hash>   one object per blob (64 lower-case hex digits)
//	<prefix>tmp/<random>   uploads whose hash was not known in advance
//
// # Glossary
//
//   - Part size: a larger upload is a multipart upload whose parts
//     (PartSize, 16 MiB by default) are sent as they fill: one on its way
//     to the bucket while the next one fills, so receiving and sending
//     overlap. An upload holds at most two part buffers (pooled), and the
//     second only within a process-wide budget (maxOverlapParts; past it
//     parts go one at a time), so memory does not grow with the blob. A
//     blob can have at most 10,000 parts: 156 GiB at 16 MiB.
//   - Payload signing: uploads send UNSIGNED-PAYLOAD (as minio-go does over
//     TLS) instead of a SHA-256 of every 64 KiB chunk: that cost CPU on
//     both sides of a plain-http connection, and the bytes are hashed with
//     BLAKE3 before Commit and verified on every read anyway.
//   - Small blob: up to SmallBlobSize (4 MiB) the bytes are held in memory
//     and Commit, which knows the hash, sends them in one PUT to the final
//     key. Most units are a few KB: one request instead of six.
//   - Known hash: when a larger blob's hash is named in advance (PUT by
//     hash), the upload goes straight to the final key, and the multipart
//     upload is completed only at Commit; Cancel aborts it.
//     An unfinished multipart upload is never visible.
//   - Held upload: a blob whose hash is learned only at the end is held in
//     memory up to 32 MiB (within a process-wide budget of 8 part buffers)
//     and sent at Commit, its hash known, to its final key; nothing is sent
//     when the key holds it already.
//   - Spool: a larger blob whose hash is learned only at the end (or
//     announced larger than 32 MiB, or finding the budget of held parts
//     spent) is written to an unlinked file in Config.SpoolDir as it
//     arrives; Commit sends the file to the final key, several parts at
//     once. The files hold at most Config.SpoolBytes at once.
//   - Temp key: when such a blob finds the spool's budget spent (or
//     spooling is off), the bytes go to a key under
//     <prefix>tmp/, and Commit copies it server-side
//     to the final key (CopyObject up to 5 GiB, a multipart ComposeObject
//     above) and then deletes it. When the final key already exists, the
//     copy is skipped.
//
// # Invariants
//
//   - Nothing appears under <prefix>blobs/ before Commit; what is there was
//     verified by cas.Store before the upload completed.
//   - An upload that fails or is cancelled aborts its multipart upload and
//     deletes its temp key before Cancel returns. A spool file is unlinked
//     when it is created, so it never outlives its upload, not even a crash. What a crash leaves is
//     removed by CleanTemp: temp keys, and on AWS unfinished multipart
//     uploads under the prefix. MinIO lists unfinished uploads only per key,
//     so there it finds none; MinIO expires them itself
//     (api stale_uploads_expiry, 24 hours by default).
//   - CleanTemp never removes an upload in progress: not one of this
//     process (tracked by key until Commit or Cancel returns), whatever the
//     grace, and not one of another process whose last part is younger than
//     the grace.
//   - Every delete (Delete, each DeleteObjects request of DeleteMany, the
//     removals of CleanTemp) takes at most Config.Timeout.
//   - Error responses are translated to cas sentinels in one function
//     (translate). Errors name the bucket and key, never credentials.
//
// Delete first checks that the blob exists (S3 deletes absent keys without
// complaint), so a blob deleted concurrently by another replica may be
// reported as deleted twice; DeleteMany does not check.
package s3store

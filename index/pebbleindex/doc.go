// Package pebbleindex is the embedded index engine: index.Store on Pebble
// (github.com/cockroachdb/pebble/v2), the zero-configuration default of
// `blockstore serve`. It keeps every rule of package index (its doc.go) and
// passes the conformance suite index/indextest, on disk and in memory.
//
// # Transactions
//
// Pebble has no transactions. Update runs one writer at a time (a token
// channel, so that waiting honours the context) on an indexed batch: the
// closure's reads see its own writes over the committed state, and an
// error discards the batch. The batch is applied (DB.Apply, without a WAL
// sync) while the writer holds the token, so the next writer reads it at
// once; after giving the token back the writer waits for a WAL sync that
// covers it, and Update returns only then. Syncs are grouped (groupSync):
// the first waiting writer that finds no sync under way leads the next one,
// a Sync-flagged LogData record that makes the WAL durable up to it; before
// it syncs it lets the writers already under way apply their batches (for
// at most a millisecond), so one sync covers every concurrent writer rather
// than the half that reached the WAL while the previous sync ran (Pebble's
// own ApplyNoSyncWait and SyncWait group that way: 3.7 commits per sync
// with 8 writers, against 7.7 here; see BenchmarkGroupCommit). A
// transaction that wrote nothing waits in the same way for the syncs of
// the commits it may have read.
//
// DeleteVersions and DeleteOrphans run as writers too. Blob registrations
// (BeginBlob, FinishBlob, RenewBlobs, ForgetBlobs) only rewrite registry
// rows and take a second turn of their own, so uploads never queue behind
// commits (and may be called inside an Update's closure, at the cost of a
// sync that waits out its millisecond for the closure's writer). ClaimBlobs
// takes both turns, so a claim is ordered with every commit naming the blob
// (one sees the other) and with every registration. A commit only reads a
// registry row, or writes one with its inline bytes (PutInlineBlob, safe
// without the registry's turn: inline.go says why): a live row can leave
// live only through ClaimBlobs, which waits for the writer.
//
// Reads outside Update run on a snapshot each, so a page of a list, a unit
// with its link set, or a stream is read from one state. Like Pebble's own
// Apply, a read may see a commit whose WAL sync is still under way; the
// commit's Update has not returned yet. Streams walk an iterator and never
// gather the index in memory.
//
// # Glossary
//
//   - Entity record: the row of an entity under its uuid: its kind,
//     collection and creation time, and a summary of its latest published
//     version and its draft (number, time, flag, name, link set) that writes
//     need without reading versions; for assets, "ever linked" and the
//     last-unlinked time.
//   - Link set: the normalized links of a unit version, stored once under
//     index.LinkSetID with a count of the stored versions (drafts included)
//     that use it; the set and its reverse keys go with the last of them.
//   - Edge key: one per (target, linker, role) for the links of a unit's
//     latest published version (role 1) and its draft (role 2), with the pin
//     of the first link to the target. LinkedBy reads role 1 in list order;
//     deletion checks read both; edges of the cycle check come from the
//     entity records' link sets.
//   - Reverse key: one per link of each stored link set, target first, so
//     "does any stored unit version link this asset" (orphans) and "is
//     version N of this target pinned" (retention) are one prefix seek.
//   - Shell: a unit or asset whose only version, a draft, was deleted. It
//     keeps its uuid and kind (links to it stay valid and resolve to
//     nothing), holds no name, counts as content of its collection, and is
//     invisible to every other read.
//
// # Key layout
//
// Each key space has a one-byte prefix. Integers are big-endian and fixed
// width; times are Unix nanoseconds, big-endian with the sign bit flipped,
// so byte order is the order the lists and walks need. ∅ is an empty value.
//
//	a layout                            → layout name (checked at Open)
//	e uuid                              → entity record
//	v uuid version                      → version record (version 0: the draft)
//	c created uuid                      → ∅            every collection, in list order
//	m collection kind created uuid      → 1 published / 0 draft-only
//	n collection name                   → holder uuid  names of latest versions and drafts
//	l set                               → refs, links  link sets
//	r target pin set                    → ∅            reverse links (pin 0: unpinned)
//	k target role created linker        → pin, linker's collection   edges
//	h hash kind uuid version            → ∅            referenced hashes
//	x superseded uuid version           → kind         published versions superseded
//	o last-unlinked uuid                → ∅            assets that lost a link
//	b hash                              → blob row (state, size, created, leased)
//	f hash                              → bytes        inline blobs (inline.go)
//	d hash                              → ∅            rows in BlobDeleting
//	i key                               → idempotency record
//	j expires key                       → ∅            idempotency expiry
//	g id                                → gc run (started, report)
//	t started id                        → ∅            gc runs by start
//
// Entity lists walk c or m from the cursor's (created, uuid); the name
// filter reads n, whose holder is listed when its latest published version
// has the name. History lists walk v backwards from the cursor's version.
// ReferencedHashes walks h and skips repeats; ClaimBlobs seeks h per hash.
// ExpiredVersions walks x up to now-retention and OrphanedAssets walks o up
// to the cutoff, rechecking each candidate against its entity record and
// the reverse keys. DeleteExpiredIdempotency walks j up to now.
//
// Values are a compact binary encoding (format byte, fixed fields, varints,
// length-prefixed strings; codec.go). BenchmarkCodec compares it with JSON.
//
// # Invariants
//
//   - Each stored version's link set exists, with refs equal to the number
//     of stored versions that use it, and has one r key per link.
//   - k keys are exactly the links of every unit's latest published version
//     and draft; n keys exactly the names entities hold; m keys exactly the
//     units and assets of each collection, flagged when they have a
//     published version; h keys exactly the (hash, version) pairs stored.
//   - Each version superseded by a later one has its superseded time in its
//     record and an x key; an asset with a last-unlinked time has an o key.
//   - The d keys are exactly the registry rows in BlobDeleting.
//   - The f keys are exactly the registry rows whose state byte carries the
//     inline flag; they go with the row (ForgetBlobs).
package pebbleindex

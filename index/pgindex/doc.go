// Package pgindex is the production index engine: index.Store on
// PostgreSQL through pgx/v5 (a pgxpool connection pool). It keeps every
// rule of package index (its doc.go) and passes the conformance suite
// (index/indextest) against a real server.
//
// Open migrates the database first (Migrate): numbered, append-only SQL
// files under migrations/, embedded in the binary and applied by goose's
// Provider under a session-level advisory lock, so replicas that start
// together migrate once and running it again is a no-op. Errors never quote
// the URL's password (RedactURL).
//
// # Glossary
//
//   - Entity row: the one row of entities per collection, unit or asset. It
//     carries the kind, the latest published version number and the link
//     sets of the latest version and of the draft; writers lock it to number
//     versions and deleters to delete.
//   - Current versions: an entity's latest published version and its draft.
//   - Link set: a unit version's normalized links, one link_sets row named by
//     index.LinkSetID plus one link_set_members row per link, shared by every
//     version (of any unit) with the same links.
//   - Edge: unit A has an edge to B when the link set of A's latest version
//     or of its draft links B (entities.latest_links, entities.draft_links).
//   - Pending write: a statement a transaction queues instead of sending,
//     because its result decides nothing; it goes out in front of the next
//     statements (or with COMMIT), so reads still see their own writes.
//
// # Schema
//
//   - entities (id pk, kind, collection, created_at, latest, latest_links,
//     draft_links, gc, ever_linked, last_unlinked_at). created_at is the
//     entity's creation (its first version, a draft included); latest is 0
//     while the entity is draft-only; gc is the garbage_collect flag of the
//     most recently written of the latest version and the draft (what
//     retention follows); ever_linked and last_unlinked_at track orphans.
//     Deleted entities are deleted rows (uuid.New never repeats a UUID), and
//     their versions and names go with them (ON DELETE CASCADE).
//     Indexes: (collection, kind, created_at, id) for every entity list by
//     keyset; latest_links and draft_links for the reverse edges; the
//     orphan candidates. No index covers latest or gc, so the update that
//     commits a version is a HOT update (fillfactor 80).
//   - versions (entity, version, created_at, superseded_at, garbage_collect,
//     name, hash, size, link_set, media_type, description, owner, author,
//     license): one table for all kinds, the columns a kind lacks left NULL.
//     One table because every query that spans kinds is then one index scan:
//     ReferencedHashes is an ordered index-only scan of versions_hash over
//     units and assets alike, the claim check one probe of it, Lookup of refs
//     of mixed kinds one statement, retention one scan; NULL columns cost a
//     bit in the row's null bitmap. The draft is the row whose version is
//     NULL: UNIQUE (entity, version) numbers published versions (NULLs are
//     distinct), the partial unique index versions_one_draft (entity) WHERE
//     version IS NULL allows one draft per entity, and publishing sets the
//     number in place. superseded_at is written on the previous latest when
//     the next published version is stored.
//   - link_sets (id pk = LinkSetID, size) and link_set_members (set_id,
//     position, target, kind, pin; pk (set_id, position)), with the reverse
//     index (target, pin, set_id) that LinkedBy, the deletion checks, pins
//     (retention) and orphans use. 1,000 versions with the same 50 links
//     store 50 member rows once. No foreign key on target: old versions may
//     link entities deleted since.
//   - names (collection, name) pk → entity: the names held by each entity's
//     latest version and draft, unique per collection across units and
//     assets; "" is no name and has no row.
//   - blobs (hash pk, size, state 1 pending / 2 live / 3 deleting,
//     created_at, leased_at, ticket): ticket is the registration a pending
//     row belongs to (migration 00002); FinishBlob makes it live only under
//     that ticket.
//   - idempotency (key bytea pk, fingerprint, status, body, expires_at): the
//     key is bytea because scoped keys hold a NUL.
//   - gc_runs (id pk, started_at, report bytea, kept byte for byte).
//   - changes (xid, seq pk, kind, entity, collection, version, event, at)
//     and changes_pruned (one row): the change feed (migration 00005;
//     changes.go explains its order).
//
// # Transactions
//
// Update runs fn in a READ COMMITTED transaction on one pooled connection
// and commits when fn returns nil; on a serialization failure or deadlock
// (40001, 40P01) it rolls back and runs fn again, at most 8 times, then
// fails with index.ErrUnavailable. Statements are pipelined (pgx.Batch): an
// operation sends its locking reads in one round trip (BEGIN rides along
// with the first), checks the rules in Go, and queues its writes; they go
// out with the next operation's reads or with COMMIT. Committing a unit
// version whose links did not change is thus two round trips: the reads,
// then the writes and COMMIT. An operation that finds a rule broken returns
// before queueing any write, so the transaction is as it was; a queued
// write that fails aborts the transaction and Update returns its error.
// Operations read Options.Now once, after they hold their entity's lock,
// so created_at grows with the version number; times are kept to the
// microsecond (PostgreSQL's precision), in UTC.
//
// translate (errors.go) is the one place where PostgreSQL's and pgx's
// errors become the index's sentinels: unique and foreign key violations
// are ErrConflict, lost connections, timeouts and an unavailable server
// ErrUnavailable, no rows ErrNotFound.
//
// # Locks and why they suffice
//
//   - Version numbers: a writer locks the entity row FOR NO KEY UPDATE, then
//     reads the current versions in a new statement and stores latest+1.
//     Concurrent writers queue on the row: no gaps, no duplicates, and no
//     unique violation reaches a caller.
//   - Blob references (index doc.go, "Blob references"): the transaction
//     that stores a version locks the blob's row FOR SHARE and requires it
//     live (else *index.BlobMissingError). ClaimBlobs, in one transaction
//     sent with its COMMIT in one round trip, (1) locks the rows FOR UPDATE,
//     which waits for every in-flight commit holding one FOR SHARE, then (2)
//     in a new statement, whose READ COMMITTED snapshot is taken after the
//     lock and so sees those commits, moves to deleting only the rows that
//     no stored version names and whose lease ended before the cutoff, and
//     (3) inserts hashes without a row as deleting (ON CONFLICT DO NOTHING).
//     A commit that reaches the row after (1) waits for the claim and then
//     reads the row as deleting, and fails. Either the sweep sees the
//     version and keeps the blob, or it claimed the blob first and the
//     commit fails: no committed version ever names a deleted blob.
//   - Links: a version whose link set is new to its entity locks its
//     targets FOR KEY SHARE (which the writers' FOR NO KEY UPDATE does not
//     block, but deleters' FOR UPDATE does) and checks that they exist with
//     the kinds given. DeleteEntity, DeleteCollection, DeleteVersions and
//     DeleteOrphans lock FOR UPDATE first, so they wait for those linkers,
//     and then check for links (or pins) with a fresh snapshot. A version
//     whose link set is its entity's latest or draft set needs no lock: that
//     set's targets are linked already, so no deleter can take them.
//   - Cycles: a writer adding unit edges takes a transaction-level advisory
//     lock (graphLockKey) and then walks the edges from the new targets with
//     a recursive CTE; two writers cannot each close half of a cycle. A new
//     entity closes none (nothing links it yet) and skips the check.
//   - Link sets are stored by blockstore_store_link_set (a PL/pgSQL
//     function in the schema), which reuses a stored set under FOR KEY SHARE
//     or inserts it, and dropped when the last version using them goes
//     (draft replaced or deleted, entity deleted, retention): the dropper
//     locks the set FOR UPDATE, then deletes it only if no version uses it,
//     in a new statement. A set dropped between the function's look and its
//     insert raises 40001 and the transaction runs again.
//   - Names: an INSERT … ON CONFLICT DO NOTHING into names claims a name (a
//     concurrent claimant waits for the first to end); the holder is read in
//     a new statement so a taken name names it. names.entity is a deferred
//     foreign key, so a name is claimed before the entity row is written and
//     a refusal leaves nothing behind.
//   - GC: TryLockGC takes pg_try_advisory_lock on a connection held out of
//     the pool until unlock; a replica that dies releases it with its
//     session. Close releases the locks still held.
//
// # Streams
//
// Blobs, ReferencedHashes, ExpiredVersions, OrphanedAssets and
// DeletingBlobs read one statement's rows as the callback consumes them
// (pgx reads them from the socket row by row), holding one connection and
// one snapshot for the whole stream; memory stays flat whatever the size.
// ReferencedHashes scans versions_hash in order and skips adjacent repeats.
//
// # Retention and orphans
//
// A version expires when its entity's gc is set, it is published and older
// than the latest, its superseded_at is before now-retention, and no link
// of any stored unit version pins it. An asset is an orphan when it was
// ever linked, no stored unit version links it, its last unlink was before
// the cutoff, and its latest version (the draft when draft-only) has
// garbage_collect. Deleting the draft of a draft-only entity deletes the
// entity, with DeleteEntity's rule (refused while a unit links it).
package pgindex

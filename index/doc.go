// Package index is Blockstore's relational index: collections, units and
// assets, their versions (drafts included), the links between unit versions
// and their targets, the registry of blobs that versions point at, and the
// small records the service keeps beside them (idempotency answers, GC runs).
//
// Two engines implement Store and pass one conformance suite (indextest):
// pgindex on PostgreSQL (production) and pebbleindex on Pebble (the
// embedded default). This file states the rules both keep; the API's rules
// (../shared/API.md) that belong to the index are here too. rules.go,
// names.go and links.go write the rules of a write once, as plain functions
// over the model (NextVersion, Heads, NameMoves, ResolveLinks…): an engine
// reads and locks what they need, calls them, and stores what they decide.
//
// # Glossary
//
//   - Entity: a collection, unit or asset, named by a UUID the index assigns
//     (uuid.New) and of one Kind forever.
//   - Version: an immutable state of an entity, numbered 1, 2, 3… per entity
//     without gaps or repeats, even under concurrent writers. Version 0 in Go
//     (null in JSON) is the draft.
//   - Draft: at most one per unit or asset (collections have none); it can be
//     replaced, published (it becomes the next number, with a new created_at
//     equal to the publish time) or deleted. A draft-only entity has no
//     published version: it is invisible to bare reads, lists, LinkedBy and
//     history lists (ErrNotFound), reachable through Ref{Draft: true}; it can
//     be a link target and it holds its name.
//   - Base version: what omitted fields of a change are taken from: for a
//     draft write, the current draft if any, else the latest published
//     version; for a published version, the latest published version, else
//     (draft-only entity) the draft.
//   - Latest: the highest-numbered published version.
//   - Link set: the normalized links of a unit version (NormalizeLinks),
//     stored once per distinct content (LinkSetID) and shared by every
//     version that has it, so 1,000 versions with the same 50 links store 50
//     link rows once.
//   - Entity creation time: created_at of its first version (draft included);
//     entity lists are ordered by it, then by uuid.
//
// # Rules
//
//   - Names: a unit's or asset's name is unique within its collection among
//     units and assets together, counting every entity's latest published
//     version and its draft; "" is no name. A taken name is a *ConflictError
//     naming the holder. A name given up by a new version or a deleted
//     entity is free at once.
//   - Links: each target must be an existing unit or asset (draft-only
//     included) — else ErrInvalid; a given Kind must match the target's.
//     A pin to a version that does not exist is allowed (it resolves to
//     nothing). A unit link must not close a cycle: unit A has an edge to
//     unit B when A's latest published version or its draft links B, pinned
//     or not; a self-link is a cycle (ErrInvalid).
//   - Blob references: a unit or asset version may only name a live blob
//     (BlobMissingError otherwise); its Size is the registry's size.
//     In the same transaction that stores the version, the engine holds the
//     blob's row against ClaimBlobs (PostgreSQL: SELECT … FOR SHARE; Pebble:
//     the single writer), so a sweep either sees the new version and keeps
//     the blob, or claimed it first and the commit fails with ErrBlobMissing.
//   - Identical versions: CommitUnit/CommitAsset (not draft) with a result
//     equal to the latest published version (hash, name, media type, links,
//     flag) create nothing and report created=false. UpdateCollection
//     likewise.
//   - Deletion: DeleteEntity removes a unit or asset, all its versions and its
//     draft at once, freeing its name; ErrConflict while the latest published
//     version or the draft of another unit links to it. DeleteCollection
//     refuses (ErrConflict) while it holds units or assets unless recursive,
//     and recursive refuses while a unit of another collection links into it.
//     A deleted UUID is ErrNotFound everywhere and is never reused.
//   - Orphans: an asset becomes "ever linked" when a stored unit version
//     first links it. When a unit version or draft that links an asset goes
//     away (draft replaced, draft deleted, unit deleted, retention), the
//     asset's last-unlinked time is set to now. OrphanedAssets are the ever
//     linked assets that no stored unit version links, unlinked before the
//     cutoff, whose latest version (the draft when draft-only) has
//     GarbageCollect.
//   - Retention: a published version's superseded time is the created_at of
//     the next published version (recorded when that version is created).
//     ExpiredVersions and DeleteVersions keep the latest published version,
//     every draft, and every version pinned by a link of any stored unit
//     version (a conservative reading of "pinned by a retained version": a
//     later sweep collects what a deleted pinner kept).
//   - Blob registry: see BlobState. Rows move pending → live → deleting →
//     gone, or pending → deleting → gone; nothing leaves deleting but
//     ForgetBlobs. RenewBlobs, BeginBlob and FinishBlob set LeasedAt to now.
//     Each pending row carries the Ticket of its registration; FinishBlob
//     makes a pending row live only under that ticket, so an upload that
//     outlived its registration (claimed, deleted and forgotten by a sweep,
//     then registered again by another uploader) cannot turn the new row
//     live before the new uploader's bytes are durable.
//
// # Durability
//
// Update returns only after the transaction is durable (PostgreSQL commit;
// Pebble WAL fsync). Concurrent writers are safe: PostgreSQL locks the
// entity row to number versions; Pebble runs one writer at a time and groups
// the fsyncs of concurrent commits.
package index

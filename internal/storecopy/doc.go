// Package storecopy copies a whole Blockstore deployment into another
// (blockstore copy): the embedded default into PostgreSQL + S3 as a team
// grows, or one PostgreSQL + S3 deployment into another when it leaves a
// database server or a bucket. Both sides are opened through internal/app,
// so the identity checks and wiring are those serve uses.
//
// # What is copied
//
// Everything a client can see and everything the index's rules depend on:
// collections, units and assets with their uuids; every stored version with
// its number, created_at and superseded time; drafts; names, media types,
// links (pinned and floating), garbage_collect; the orphan tracking of
// assets; and every blob those versions name. Idempotency records, GC
// reports and blobs no version names are not copied: they belong to the
// source's own clients and sweeps.
//
// # Order, and why a destination never names bytes it lacks
//
// The source's index is read entity by entity (index.Exporter: collections
// first, then each collection's units and assets, a page at a time). For a
// batch of entities the blobs they name are made present and live in the
// destination first — skipped when the destination's registry already has
// them live, registered when the bytes are there (Stat) without a live row,
// otherwise streamed from the source into the destination's refs.Service,
// whose cas.Store verifies the hash on arrival — and only then is each
// entity imported (index.Importer), in a transaction of its own that checks
// every blob is live. An interrupted copy therefore leaves only whole
// entities and present blobs behind, and the next run resumes: blobs the
// destination has are skipped, entities already equal are skipped.
//
// # Names
//
// An entity imported before another has moved may find its name still held
// at the destination: by an entity the source deleted (deleted at the end of
// the run), or by one imported later. Such imports wait and are retried in
// rounds with the deletions; entities that swapped names at the source, which
// no order of single imports can move, are imported together in one
// transaction (index.Importer.ImportGroup).
//
// # Running while the source serves
//
// From PostgreSQL + S3 a copy runs online: the export is not one snapshot,
// so writes during the copy may or may not be seen. A second run copies
// what changed since (new versions, drafts written, replaced or deleted,
// versions removed by retention, entities deleted at the source, which are
// deleted at the destination) and creates nothing when nothing changed, so
// repeated runs converge once writes stop. An embedded source is a data
// directory one process holds: the copy refuses while a server runs on it.
//
// # Which destinations are accepted
//
// The destination's index records the source it is a copy of
// (index.Importer.SetCopySource), written before anything is sent. A
// destination is accepted when it holds nothing at all (no entity, no blob
// row, no blob), or when it records this same source; anything else is
// ErrDestination. The source is named by its store id (the identity the
// index and blob store share) when the engine records one, else by a
// description of where it lives (SourceName).
package storecopy

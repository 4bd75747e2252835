// Package gc is Blockstore's garbage collector: it deletes published
// versions past their retention, assets that no unit links any more, and
// then every blob that nothing retained points at — safely while writers
// run, on any number of replicas, and with any grace, zero included.
//
// A Collector works over two small interfaces, Index (what it needs of
// index.Store) and Blobs (what it needs of *cas.Store). Sweep runs one sweep
// and returns its Report; Start runs one in the background and Wait waits
// for it; Runs and Run read stored reports back; Schedule sweeps on an
// interval. The command line, the HTTP API and the server's schedule call
// these and nothing else.
//
// Files: gc.go (the Collector and its options), phases.go (the phase loop,
// the spool-and-batch loop every phase shares, retention, orphans,
// cleanup), mark.go (the plan and the mass-delete guard), plan.go (the
// one-pass join), spool.go (temporary files), delete.go (resume, sweep and
// the fenced delete), runs.go (storing and serving reports).
//
// # Glossary
//
//   - Sweep: one run of the phases below, under the index's sweep lock
//     (a PostgreSQL advisory lock across replicas; a process lock embedded).
//     A second sweep meanwhile gets ErrRunning (the API's 409).
//   - Retention: how long a superseded published version is kept, counted
//     from the creation of the next version (default 720h).
//   - Grace: how long leases, recently unlinked assets and young stray bytes
//     are protected (default 24h).
//   - Lease: the time a blob's registry row was last renewed: by an upload
//     (BeginBlob, FinishBlob), an existence check (HEAD, /blobs/missing:
//     RenewBlobs). A sweep never claims a blob whose lease is younger than
//     its grace, referenced or not.
//   - Plan: what a phase would delete, with counts and bytes, computed before
//     anything is deleted and kept in temporary files. A dry run computes the
//     plan and stops; a real run executes it in batches.
//   - Candidate: a blob the plan would delete: a registry row that no stored
//     version names and whose lease has ended, or a stray.
//   - Stray: bytes in the blob store with no registry row (an upload that
//     lost a race with a sweep, a sweep that died after forgetting a row,
//     bytes copied in by hand), older than the grace.
//   - Claim, delete, forget: the three steps that remove a blob (below).
//     A claim names the sweep that holds it (the report's id) and when it
//     was taken; another sweep takes it over only when it is older than the
//     delete bound.
//   - Delete bound: the longest one DeleteMany call may take
//     (Options.DeleteBound; the bucket's request timeout on S3).
//   - Mass-delete guard: a plan that deletes more than
//     Options.MaxDeleteShare of the stored blobs or bytes (default half)
//     stops the sweep before any blob is deleted, unless Request.Force.
//
// # Phases
//
//  1. retention: ExpiredVersions lists the versions past retention (of
//     entities whose latest version has garbage_collect; never the latest
//     published version, a draft, or a version a stored unit version pins);
//     DeleteVersions deletes them in batches, re-checking each.
//  2. orphans: OrphanedAssets lists the assets some unit once linked and no
//     stored unit version links since before now minus the grace;
//     DeleteOrphans deletes them in batches, re-checking each.
//  3. resume: rows left in the deleting state by a sweep that died are
//     taken over (once their claim is older than the delete bound; younger
//     ones are waited for once, up to the bound), their bytes deleted, then
//     the rows forgotten.
//  4. mark: one pass over three streams sorted by hash — the registry's
//     rows (Blobs), the hashes that stored versions name (ReferencedHashes,
//     copied to a temporary file), and the blob store's contents (Walk, in no
//     order, so first sorted in runs of 128Ki records on disk and merged) —
//     writes the candidates to a temporary file. Memory stays constant
//     whatever the number of blobs; disk takes about 40 bytes per blob.
//     The mass-delete guard looks at the plan here: too large a share of
//     the blobs or bytes and the sweep stops (ErrMassDelete; a dry run only
//     notes it). Retention and orphans have run by then (the plan depends on
//     them); no blob has been deleted but the resumed ones, whose deletion a
//     sweep before decided.
//  5. sweep: the candidates are claimed in batches; the claimed bytes are
//     deleted (DeleteMany: absent is fine), then their rows forgotten.
//  6. cleanup: temporary data of the blob store older than the grace (but
//     never younger than a minute, which an upload may be writing), and
//     expired idempotency records.
//
// The plan is only a list of suspects. Safety never rests on it: it may be
// stale by the time it runs, because every deletion goes through a claim
// that the index re-checks atomically against commits.
//
// # The safety protocol
//
// The guarantee (DESIGN.md, invariant 3): nothing a stored version names is
// ever deleted, and no committed version ever points at missing bytes —
// whatever the interleaving of writers and sweeps, whatever the grace.
//
// Every blob has a registry row in one of three states (index.BlobState):
//
//   - pending: an upload is under way (BeginBlob, before any byte is
//     written). Nothing may name a pending blob.
//   - live: the bytes are durable and verified (FinishBlob). Versions may
//     name it.
//   - deleting: a sweep claimed it. It never becomes live again. A commit
//     that names it fails with index.ErrBlobMissing (the API's 404: the
//     client uploads the bytes again and retries); an upload of it fails with
//     index.ErrBlobBusy until the sweep has forgotten it (moments later).
//
// The moves are absent → pending → live → deleting → absent, or pending →
// deleting, or absent → deleting (ClaimBlobs of a stray inserts the row as
// deleting). Only ForgetBlobs leaves deleting, and a sweep calls it only
// after the bytes are gone.
//
// Three rules make the guarantee:
//
//  1. A commit (a transaction that stores a version naming hash H) requires
//     H's row to be live, and in the same transaction holds the row against
//     claims (PostgreSQL: SELECT … FOR SHARE on the row; Pebble: the single
//     writer).
//  2. ClaimBlobs, in one transaction per batch that locks the rows
//     (PostgreSQL: FOR UPDATE; Pebble: the single writer), moves H to
//     deleting only if no stored version names H and H's lease is older than
//     now minus the grace.
//  3. The sweep deletes bytes only of rows it holds in deleting under its
//     own claim, and forgets a row only under its own claim, after its
//     bytes are deleted (the fence below makes "holds" mean something when
//     a lock is lost).
//
// Why it holds under any interleaving: a commit naming H and a claim of H
// both lock H's row, so one of them happens first. If the commit is first,
// the claim sees a stored version naming H and leaves H alone — for as long
// as any version names it. If the claim is first, the row is deleting when
// the commit looks, so the commit fails with 404 and nothing points at H.
// There is no third order. Once deleting, H cannot be named until it has
// been forgotten (after its bytes are gone) and uploaded again (pending,
// bytes written, live) — so a version can only name bytes written after the
// last deletion. The reasoning uses no clock: it holds with a grace of zero.
// The grace only makes the 404 rare.
//
// This closes the known failure of other systems, where a client asks which
// hashes are missing, learns that H is stored, skips its upload, and
// commits a version naming H while a sweep deletes it: here that commit
// either lands before the claim (and H stays) or fails with 404 (and the
// client uploads H again).
//
// # The lease rule
//
// An existence check or an upload renews the lease of a blob; ClaimBlobs
// refuses a blob whose lease was renewed less than the grace ago, even when
// nothing references it. So a client that learned "H is stored" at time t
// and commits before t + grace is never told 404 because of a sweep, and
// with the default grace of 24h an importer never re-uploads. With a grace
// of zero, leases protect nothing, and clients may get 404 and re-upload:
// the protocol above keeps them safe all the same. Pending rows follow the
// same rule, so an upload that takes longer than the grace may have its row
// claimed (FinishBlob then fails with ErrBlobMissing and the client uploads
// again).
//
// # A sweep that dies
//
// Each batch is claim, delete, forget, in that order. Dying:
//
//   - before a claim: nothing changed for that batch; the next sweep plans
//     again.
//   - after a claim, before or during the delete: rows are deleting, bytes
//     may remain. No version names them (checked at the claim) and none can
//     start to (commits need live). The next sweep's resume phase deletes
//     the bytes (absent is fine) and forgets the rows. Meanwhile commits that
//     name them get 404 and uploads get ErrBlobBusy, so those hashes are
//     unavailable for re-upload until a sweep runs again.
//   - after the delete, before the forget: the same; resume forgets.
//   - during retention or orphans: each batch is one index transaction; the
//     next sweep lists what is still expired or orphaned.
//
// At no point does a version point at missing bytes: bytes are only
// deleted under a deleting row, which no version names.
//
// # Fenced deletes
//
// The sweep lock keeps sweeps one at a time, but a PostgreSQL advisory lock
// lives in a database session, and a session can die (a network cut, a
// terminated backend, a failover) while its sweep goes on: the sweep checks
// the lock (LockChecker) before each claim and each delete, but a lock lost
// just after the check leaves a delete in flight while another replica's
// sweep takes the lock. Without a fence, that second sweep resumes the
// first one's claims, deletes and forgets them; a writer uploads the same
// bytes again and commits a version naming them; then the first sweep's
// delete lands and the committed version points at nothing.
//
// The fence makes that impossible, with no clock shared between replicas:
//
//  1. A claim records its sweep and its time on the index's own clock
//     (PostgreSQL's clock_timestamp(); the Pebble process's wall clock):
//     ClaimBlobs, and ReclaimBlobs when a sweep takes a claim over, which
//     stamps it again.
//  2. A sweep reads its own clock at T just before it claims (or takes
//     over) a batch, and runs every delete of that batch under a context
//     that ends at T + DeleteBound; no delete starts after it. The claim's
//     stamp is after T, so every delete of the batch is over (done, failed
//     or abandoned) by stamp + DeleteBound in real time.
//  3. ReclaimBlobs hands a row to another sweep only when its stamp is more
//     than DeleteBound old on the same clock that stamped it. So by the time
//     a row changes hands, no delete of its old holder can still be in
//     flight.
//  4. ForgetBlobs forgets only rows under the caller's own claim. A sweep
//     that lost a row cannot forget it (and so cannot make its hash
//     uploadable while its new holder is deleting it), and only the
//     holder's forget, after its own deletes finished, ends the deleting
//     state. A re-upload can therefore only write bytes after every delete
//     issued under every claim of that hash is over.
//
// This holds whatever the locks do: even two sweeps at once (a lost lock)
// never delete bytes that a version names. The lock and its checks only
// save work and keep the 404s rare. It assumes that the blob store applies
// no delete after its caller's context ended (a request the client
// abandoned is not carried out later); DeleteBound should be at least the
// blob store's own request timeout, which bounds it on S3. When the bound
// runs out on a slow store, the batch fails and the next sweep finishes it.
// A sweep that finds young claims of another sweep waits the bound once and
// then takes over what has aged; what is still held is left to its holder.
//
// A report that stays "running" because its process died is marked failed
// by the next sweep that takes the lock.
//
// # Registrations carry a ticket
//
// FinishBlob finishes only the registration its caller began: BeginBlob
// returns the pending row's index.Ticket and FinishBlob makes a pending row
// live only under it. Without it, an upload whose row was claimed,
// forgotten and registered again by a second uploader (possible once its
// lease has ended, that is at once with a grace of zero) could turn the
// second registration live while its own bytes were deleted and before the
// second uploader had written them. With it, the stale upload gets
// ErrBlobMissing and its client uploads again.
//
// # Scale
//
// BenchmarkSweep, 1,000,000 blobs and 1,000,000 versions with 10% of the
// blobs garbage, directory blob store, on a 2-core VM shared with other
// work (BLOCKSTORE_BENCH_BLOBS=1000000 go test -run '^$' -bench
// BenchmarkSweep -benchtime 1x -timeout 2h ./gc/):
//
//	embedded (Pebble):  29.3 s, peak RSS 73 MiB (42 MiB before the sweep)
//	PostgreSQL:         21.3 s, peak RSS 67 MiB (35 MiB before; the
//	                    server's own memory is not counted)
//
// At 100,000 blobs: 2.8 s / 68 MiB and 3.7 s / 59 MiB. Time is linear in
// the number of blobs: the walk of the blob store and the unlinking of
// the garbage files take most of it. Memory does not grow with the number
// of blobs: the plan lives in temporary files.
//
// # Dry runs
//
// A dry run computes the same plan and changes nothing: its report counts
// what a real sweep would delete on the same state, with one approximation:
// blobs that become unreferenced only because the same sweep deletes
// versions or assets are not counted (that would take a reference count
// per hash, which the engines do not keep), and Report.Notes says so when
// the sweep would delete any. Temporary data is not counted. The
// mass-delete guard's warning appears in the notes as it would stop a real
// sweep.
package gc

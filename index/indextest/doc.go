// Package indextest is the conformance suite every index.Store engine
// passes, and the benchmarks that measure them. A backend's test file is a
// few lines:
//
//	func TestConformance(t *testing.T) {
//		indextest.Run(t, func(t *testing.T, opt index.Options) index.Store {
//			s, err := Open(…, opt)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
//	func BenchmarkIndex(b *testing.B) { indextest.RunBenchmarks(b, …) }
//
// The suite holds both engines to the same answers: the rules of package
// index (its doc.go) and those of API.md that belong to the index (drafts,
// omitted fields, names, links, deletion, pagination, retries), the blob
// registry's state machine, the streams GC reads, and the properties that
// must hold under concurrent writers.
//
// # Glossary
//
//   - Factory: the function a backend gives Run; it opens an empty store for
//     one subtest and closes it with t.Cleanup. Subtests run in parallel (up
//     to go test -parallel), so the factory is called concurrently; opening
//     a store should be cheap, since the suite opens one per subtest (about
//     ninety). Close must be safe to call twice: the suite closes some
//     stores itself.
//   - Clock: the suite's controllable clock, passed as index.Options.Now. It
//     starts at Epoch, ticks one microsecond per reading (so creation order
//     is strict and PostgreSQL round-trips every time exactly) and jumps
//     forward with Advance to test retention, leases, orphans and expiry.
//   - Optional capabilities: interfaces a Store may implement that the suite
//     finds by type assertion (LinkRowCounter, BlobLoader). A test that needs
//     one a backend lacks is skipped with a message naming it; a benchmark
//     falls back to the Store interface.
//   - BLOCKSTORE_BENCH_VERSIONS: how many versions the ReferencedHashes
//     benchmark loads (default 100,000; 10,000 with -short).
//
// # Invariants the suite relies on
//
//   - Every subtest starts from an empty store of its own, so lists and
//     streams hold exactly what the subtest wrote.
//   - Every version points at a live blob: the suite registers blobs
//     (BeginBlob, FinishBlob) before committing versions that name them,
//     with sizes of its choosing, so a store that takes sizes from anywhere
//     but the registry fails.
//   - Times a store reports come from Options.Now: the suite checks them
//     against the clock readings around each write.
//   - Every loop in the suite is bounded in count and in time.
package indextest

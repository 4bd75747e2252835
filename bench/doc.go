// Package bench is Blockstore's end-to-end benchmark harness: it builds the
// real blockstore binary, runs it over loopback on the embedded default and
// on PostgreSQL + MinIO, drives it through package client, and prints one
// table in which every figure stands beside the machine's limits and beside
// MinIO doing the same work, all measured in the same invocation.
//
// `make bench` runs it at the sizes (go run ./bench/cmd/blockstore-bench);
// `make bench-quick` at sizes that finish in under two minutes on two cores;
// TestHarness runs it at its smallest size under `make test`, so that it
// cannot rot (it asserts no timings). Go micro-benchmarks stay in their
// packages (`go test -bench`); this package measures the service as an
// operator runs it.
//
// # Glossary
//
//   - Target: what a measurement runs against: Blockstore on the embedded
//     default (Pebble index, blob directory, every write fsynced), Blockstore
//     on PostgreSQL + MinIO (index in a fresh database, blobs in a fresh
//     bucket of the harness's MinIO server), or MinIO alone (minio-go
//     PutObject/GetObject against that same server).
//   - Limit: what the machine can do at best for the same bytes, measured
//     in each run: BLAKE3 on one core and on all cores, sequential writes
//     with fsync, cold and page-cache reads, 4 KiB write+fsync, and a bare
//     Go HTTP server answering 4 KiB over loopback.
//   - Run: one pass over every target of a section. Targets are interleaved
//     within a run (their order rotates from run to run) and each run gets
//     fresh deployments, so that a ratio compares figures taken moments
//     apart on a machine that others may be using.
//   - Figure: the median of the runs, shown with their minimum and maximum.
//   - Ratio: Blockstore ÷ MinIO or Blockstore ÷ limit, computed run by run
//     (each run's figure over the same run's comparison) and then the
//     median taken; for a rate above 1 is faster, for a latency above 1 is
//     slower.
//   - Scale: the sizes (Smoke for the test, Quick, Default as in the
//     issues, Full for a thorough run).
//
// # Invariants
//
//   - Every server, MinIO process, database, bucket and temporary directory
//     the harness creates is removed when Run returns, also on error.
//   - Servers listen on 127.0.0.1 only; every loop is bounded in count.
//   - Every run uploads new bytes into fresh stores (the targets of a run get
//     the same bytes), so no figure is flattered by deduplication except the
//     re-import, whose point it is; every read checks the bytes or the count
//     it got.
//   - Peak memory figures are the kernel's: VmHWM from /proc/PID/status of
//     the server or command process, never the Go heap alone (and never
//     getrusage's ru_maxrss, which for a child of os/exec counts the
//     parent's memory too).
package bench

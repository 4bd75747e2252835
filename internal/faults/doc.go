// Package faults holds Blockstore's fault tests: the real binary killed
// with SIGKILL while writers upload and commit, PostgreSQL and MinIO cut off
// under load, and a directory store whose disk fills up. It checks the
// invariants of DESIGN.md that only a fault exercises: an acknowledged write
// survives a crash (4), a version becomes visible only after its blob is
// durable (2) and never points at a missing blob (3), and a request that
// fails changes nothing (5), with failures answered fast and clearly (503
// unavailable) instead of hangs.
//
// The package itself is Proxy, a loopback TCP proxy a test puts between the
// server and a dependency it must not stop (the shared PostgreSQL, the
// package's MinIO) so that it can take the connection down, black-hole it
// and restore it; everything else is in the tests.
//
// # Glossary
//
//   - Down: every connection through the proxy is reset and new ones are
//     reset as soon as they arrive, as when the dependency's process is gone.
//     Down and at once Up again is a restart.
//   - Black hole: connections are accepted and nothing moves, as when the
//     dependency's host stops answering; only a timeout ends a request then
//     (PostgreSQL's connect_timeout and statement_timeout, --s3-timeout).
//   - Acknowledged write: a write the API answered with a 2xx. Only these
//     are promised to survive; a write in flight at the kill may or may not.
//   - Journal: what the test's writers were acknowledged, checked after
//     every restart.
//
// # Invariants the tests hold the service to
//
//   - After kill -9 and a restart, every acknowledged write reads back
//     byte-identical, every listed entity's bytes hash to its hash, verify
//     finds nothing corrupt or missing, and temporary data is cleaned up.
//   - While a dependency is cut off, requests end within a bounded time with
//     503 unavailable (or succeed when they do not need it), /readyz is 503,
//     the process stays up, and it serves again on its own once the
//     dependency is back.
//   - A full disk under the blob directory fails an upload with 503
//     unavailable and a message that says so, leaves no temporary file and
//     no registry row that blocks a later upload, and changes nothing else.
//
// The tests run the real binary (built once per run into
// $TMPDIR/blockstore-faults-bin) on 127.0.0.1, except TestDiskFullInjected,
// which wires the services in process over a failing backend.
package faults

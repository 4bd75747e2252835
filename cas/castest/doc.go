// Package castest is the conformance suite of cas backends. A backend is
// done when Run passes against it; each backend's test file is a few lines:
//
//	func TestConformance(t *testing.T) {
//		castest.Run(t, func(t *testing.T) cas.Backend { … a fresh, empty backend … })
//	}
//
// The suite drives backends through the portable cas.Store, as the service
// does, and checks what the backend leaves behind: blobs through Walk and
// temporary data through cas.TempCleaner (CleanTemp with age 0 must find
// nothing after a failed put) and, when the backend has it, UploadCounter.
// Checks that need to reach under a backend (corrupting stored bytes) belong
// in the backend's own tests.
//
// # Glossary
//
//   - Fixture: one subtest's fresh backend and the cas.Store over it.
//   - Content: deterministic pseudo-random bytes generated on the fly, so a
//     256 MiB blob costs 1 MiB of memory to write and to check.
//   - Leftovers: temporary data a failed put must not leave: CleanTemp(0)
//     must find none, and UploadCounter must count none for the hashes
//     involved.
//
// # Invariants checked
//
// Every failed put (hash mismatch, MaxSize, cancelled context, broken body)
// leaves Walk unchanged, the hashes involved absent, and no leftovers;
// memory stays flat while a LargeSize blob is written and read; concurrent
// puts of the same bytes all succeed and store one blob.
package castest

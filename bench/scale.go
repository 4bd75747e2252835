package bench

import (
	"fmt"
	"strings"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// Sizes are the amounts of work of one scale.
type Sizes struct {
	// Runs is how many times each measurement is taken (the figure is
	// their median).
	Runs int

	// LimitBytes: bytes hashed per core, written with fsync and read back
	// for the limits; FsyncOps: 4 KiB write+fsync operations; FileOps:
	// small files created and unlinked; BareRequests: requests to the bare
	// HTTP server.
	LimitBytes   int64
	FsyncOps     int
	FileOps      int
	BareRequests int

	// LargeBytes: the one large asset; SmallCount × SmallBytes: the many
	// small assets; SmallClients: the concurrent clients of the second pass
	// over them (the first uses one).
	LargeBytes   int64
	SmallCount   int
	SmallBytes   int64
	SmallClients int

	// Units of UnitBytes of OLX with five links each, created by
	// UnitClients concurrent clients; OLXRequests GETs of their OLX by
	// ReadClients concurrent clients; ResolveRequests resolves of
	// ResolveRefs units with their OLX.
	Units           int
	UnitBytes       int
	UnitClients     int
	OLXRequests     int
	ReadClients     int
	ResolveRequests int
	ResolveRefs     int

	// The import tree: TreeLarge files of TreeLargeBytes and TreeSmall files
	// of TreeSmallBytes; ImportJobs workers for the import and for the local
	// read+hash it is compared with.
	TreeLarge      int
	TreeLargeBytes int64
	TreeSmall      int
	TreeSmallBytes int64
	ImportJobs     int

	// GCBlobs blobs (and as many versions), of which GCGarbagePercent are
	// garbage; GCRuns sweeps (each on fresh garbage).
	GCBlobs          int
	GCGarbagePercent int
	GCRuns           int

	// StreamBytes: the streamed upload during which the server's peak RSS is
	// read.
	StreamBytes int64

	// The transfer peers' table (Blockstore beside bazel-remote and MinIO,
	// one client, fresh blobs each run): PeerLargeCount blobs of
	// PeerLargeBytes and PeerSmallCount of PeerSmallBytes.
	PeerLargeCount int
	PeerLargeBytes int64
	PeerSmallCount int
	PeerSmallBytes int64
}

// Scale names a set of Sizes.
type Scale string

const (
	// Smoke is the smallest scale: TestHarness runs it under the race
	// detector so that the harness cannot rot. Its figures mean nothing.
	Smoke Scale = "smoke"
	// Quick finishes in under two minutes on two cores (make bench-quick).
	Quick Scale = "quick"
	// Default is the issues' sizes (make bench).
	Default Scale = "default"
	// Full is Default with more runs and a larger sweep.
	Full Scale = "full"
)

// Scales lists the scales, smallest first.
var Scales = []Scale{Smoke, Quick, Default, Full}

// ParseScale parses a scale name.
func ParseScale(s string) (Scale, error) {
	for _, sc := range Scales {
		if string(sc) == strings.ToLower(s) {
			return sc, nil
		}
	}
	return "", fmt.Errorf("bench: unknown scale %q (want smoke, quick, default or full)", s)
}

// Sizes returns the sizes of the scale.
func (s Scale) Sizes() Sizes {
	switch s {
	case Smoke:
		return Sizes{
			Runs: 1, LimitBytes: 8 * mib, FsyncOps: 10, FileOps: 100, BareRequests: 200,
			LargeBytes: 8 * mib, SmallCount: 8, SmallBytes: 256 * kib, SmallClients: 4,
			Units: 40, UnitBytes: 4 * kib, UnitClients: 4, OLXRequests: 200, ReadClients: 16,
			ResolveRequests: 3, ResolveRefs: 40,
			TreeLarge: 2, TreeLargeBytes: 2 * mib, TreeSmall: 8, TreeSmallBytes: 256 * kib, ImportJobs: 4,
			GCBlobs: 500, GCGarbagePercent: 10, GCRuns: 1,
			StreamBytes:    32 * mib,
			PeerLargeCount: 2, PeerLargeBytes: 4 * mib, PeerSmallCount: 8, PeerSmallBytes: 256 * kib,
		}
	case Quick:
		return Sizes{
			Runs: 3, LimitBytes: 64 * mib, FsyncOps: 50, FileOps: 500, BareRequests: 1000,
			LargeBytes: 64 * mib, SmallCount: 32, SmallBytes: mib, SmallClients: 8,
			Units: 200, UnitBytes: 4 * kib, UnitClients: 8, OLXRequests: 1000, ReadClients: 16,
			ResolveRequests: 5, ResolveRefs: 200,
			TreeLarge: 2, TreeLargeBytes: 16 * mib, TreeSmall: 32, TreeSmallBytes: mib, ImportJobs: 4,
			GCBlobs: 5000, GCGarbagePercent: 10, GCRuns: 2,
			StreamBytes:    128 * mib,
			PeerLargeCount: 2, PeerLargeBytes: 32 * mib, PeerSmallCount: 50, PeerSmallBytes: mib,
		}
	case Full:
		sz := Default.Sizes()
		sz.Runs = 5
		sz.OLXRequests = 50000
		sz.ResolveRequests = 50
		sz.GCRuns = 3
		return sz
	}
	return Sizes{
		Runs: 3, LimitBytes: 512 * mib, FsyncOps: 200, FileOps: 2000, BareRequests: 20000,
		LargeBytes: gib, SmallCount: 1000, SmallBytes: mib, SmallClients: 8,
		Units: 10000, UnitBytes: 4 * kib, UnitClients: 8, OLXRequests: 20000, ReadClients: 16,
		ResolveRequests: 20, ResolveRefs: 1000,
		TreeLarge: 16, TreeLargeBytes: 64 * mib, TreeSmall: 1024, TreeSmallBytes: mib, ImportJobs: 4,
		GCBlobs: 1000000, GCGarbagePercent: 10, GCRuns: 2,
		StreamBytes:    4 * gib,
		PeerLargeCount: 2, PeerLargeBytes: 256 * mib, PeerSmallCount: 200, PeerSmallBytes: mib,
	}
}

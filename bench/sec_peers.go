package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// groupPeers is the group of the transfer peers' rows, printed as a table
// of their own.
const groupPeers = "transfer peers: one client, fresh blobs each run"

// peerGoals are the goals for a peers' row: the least ratio of
// embedded to bazel-remote and of PostgreSQL + MinIO to MinIO alone.
type peerGoals struct {
	Bazel, MinIO string
}

var peerHeader = []string{
	"measure", "unit", "Blockstore embedded", "Blockstore PG+MinIO", "MinIO alone", "bazel-remote",
	"emb ÷ bazel-remote", "goal", "emb ÷ MinIO", "PG ÷ MinIO", "goal",
}

// PeerTable returns the transfer peers' rows as cells, header first (the
// header alone when the section did not run).
func (r *Report) PeerTable() [][]string {
	out := [][]string{peerHeader}
	for _, row := range r.Rows {
		if row.Group != groupPeers {
			continue
		}
		out = append(out, []string{
			row.Name, row.Unit,
			cell(row.Values[Embedded]), cell(row.Values[Postgres]), cell(row.Values[MinIO]), cell(row.Values[BazelRemote]),
			ratioCell(row.Values[Embedded], row.Values[BazelRemote]), row.Goals.Bazel,
			ratioCell(row.Values[Embedded], row.Values[MinIO]),
			ratioCell(row.Values[Postgres], row.Values[MinIO]), row.Goals.MinIO,
		})
	}
	return out
}

// peerRows are the row names of the peers' table.
type peerRows struct {
	putLarge, putSmall, getLarge, getSmall, postLarge string
	getRedirect                                       string
	cpuPut, cpuGet                                    string
	sysPut, sysGet                                    string
}

// peerBlobs are the bytes of one run, named as each target names them.
type peerBlobs struct {
	large, small []content
	// post are other large blobs, for the POST row: bytes already stored
	// would be deduplicated.
	post []content
	// blake3 and sha256 name each blob (large first, then small) for
	// Blockstore and for bazel-remote.
	blake3 []cas.Hash
	sha256 []string
}

func (p peerBlobs) all() []content { return append(append([]content(nil), p.large...), p.small...) }

// peersSection measures what bulk importers and the Compositor do, PUT and
// GET of large and of 1 MiB blobs by hash, on Blockstore beside
// bazel-remote (a cache that neither fsyncs nor verifies) and MinIO alone,
// with the server processes' CPU time per GB. Targets take turns within
// each run, so that each ratio compares runs under the same load.
func (h *harness) peersSection(ctx context.Context) {
	sz := h.sz
	large := fmt.Sprintf("%d × %s", sz.PeerLargeCount, binaryUnits(sz.PeerLargeBytes))
	small := fmt.Sprintf("%s × %s", count(sz.PeerSmallCount), binaryUnits(sz.PeerSmallBytes))
	rows := peerRows{
		putLarge:    "PUT " + large + " by hash",
		putSmall:    "PUT " + small + " by hash",
		getLarge:    "GET " + large + " by hash",
		getSmall:    "GET " + small + " by hash",
		postLarge:   "POST /assets " + large + ", hash unknown",
		getRedirect: "GET " + large + " by hash, Prefer: redirect",
		cpuPut:      "server CPU per GB of PUT",
		cpuGet:      "server CPU per GB of GET",
		sysPut:      "… of it kernel (system) CPU, PUT",
		sysGet:      "… of it kernel (system) CPU, GET",
	}
	goals := map[string]peerGoals{
		rows.putLarge:    {"≥ 2.0×", "≥ 0.8×"},
		rows.putSmall:    {"≥ 1.0×", "≥ 0.8×"},
		rows.getLarge:    {"≥ 1.1×", "≥ 0.9×"},
		rows.getSmall:    {"≥ 1.1×", "≥ 0.8×"},
		rows.postLarge:   {"", "≥ 0.6×"},
		rows.getRedirect: {"", "≥ 0.95×"},
	}
	for _, n := range []string{rows.putLarge, rows.putSmall, rows.getLarge, rows.getSmall, rows.postLarge, rows.getRedirect} {
		h.rep.row(groupPeers, n, "MB/s").Goals = goals[n]
	}
	h.rep.row(groupPeers, rows.cpuPut, "s/GB")
	h.rep.row(groupPeers, rows.cpuGet, "s/GB")
	h.rep.row(groupPeers, rows.sysPut, "s/GB")
	h.rep.row(groupPeers, rows.sysGet, "s/GB")

	targets := []Target{Embedded, Postgres, MinIO}
	if h.bazel != nil {
		targets = append(targets, BazelRemote)
	}
	for run := range sz.Runs {
		var p peerBlobs
		for i := range sz.PeerLargeCount {
			p.large = append(p.large, newContent(seedOf("peer-large", run, i), sz.PeerLargeBytes))
			p.post = append(p.post, newContent(seedOf("peer-post", run, i), sz.PeerLargeBytes))
		}
		for i := range sz.PeerSmallCount {
			p.small = append(p.small, newContent(seedOf("peer-small", run, i), sz.PeerSmallBytes))
		}
		for _, c := range p.all() {
			p.blake3 = append(p.blake3, c.hash())
			if h.bazel != nil {
				p.sha256 = append(p.sha256, sha256Of(c))
			}
		}
		for _, t := range rotate(targets, run) {
			if err := h.peersRun(ctx, run, t, rows, p); err != nil {
				h.fail("transfer peers", t, run, err)
			}
		}
	}
}

// peerTarget is one target of the peers' table seen as a store of blobs
// named by their index in peerBlobs.
type peerTarget struct {
	put  func(ctx context.Context, i int, c content) error
	get  func(ctx context.Context, i int, buf []byte) (int64, error)
	post func(ctx context.Context, i int, c content) error // nil: none
	// getRedirect is get with `Prefer: redirect` (nil: the target does
	// not redirect).
	getRedirect func(ctx context.Context, i int, buf []byte) (int64, error)
	pids        []int
	stop        func() error
}

func (h *harness) openPeer(ctx context.Context, t Target, p peerBlobs) (*peerTarget, error) {
	switch t {
	case MinIO:
		bucket, err := h.minio.newBucket(ctx, "bench-peers")
		if err != nil {
			return nil, err
		}
		o := &minioObjects{m: h.minio, bucket: bucket}
		name := func(i int) string { return fmt.Sprintf("blob-%06d", i) }
		return &peerTarget{
			put: func(ctx context.Context, i int, c content) error {
				_, err := o.m.Client.PutObject(ctx, bucket, name(i), c.reader(), c.size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
				return err
			},
			get:  func(ctx context.Context, i int, buf []byte) (int64, error) { return o.get(ctx, name(i), buf) },
			pids: []int{h.minio.PID},
			stop: o.Close,
		}, nil
	case BazelRemote:
		b := h.bazel
		return &peerTarget{
			put:  func(ctx context.Context, i int, c content) error { return b.put(ctx, p.sha256[i], c) },
			get:  func(ctx context.Context, i int, buf []byte) (int64, error) { return b.get(ctx, p.sha256[i], buf) },
			pids: []int{b.PID},
			stop: func() error { return nil },
		}, nil
	}
	o, err := h.openObjects(ctx, t, "peers")
	if err != nil {
		return nil, err
	}
	b := o.(*blockstoreObjects)
	c0 := b.d.srv.Client
	pids := []int{b.d.srv.PID}
	if t == Postgres {
		// The PostgreSQL server's processes are not counted: they are
		// shared with other databases and do little for a blob's bytes.
		pids = append(pids, h.minio.PID)
	}
	get := func(c *client.Client) func(ctx context.Context, i int, buf []byte) (int64, error) {
		return func(ctx context.Context, i int, buf []byte) (int64, error) {
			d, err := c.GetBlob(ctx, p.blake3[i], client.GetOptions{})
			if err != nil {
				return 0, fmt.Errorf("bench: GET blob %s: %w", p.blake3[i], err)
			}
			defer d.Close()
			return drain(d.Body, buf)
		}
	}
	var getRedirect func(ctx context.Context, i int, buf []byte) (int64, error)
	if t == Postgres {
		getRedirect = get(c0.PreferringRedirects())
	}
	return &peerTarget{
		put: func(ctx context.Context, i int, c content) error {
			created, err := c0.PutBlob(ctx, p.blake3[i], c.body())
			if err == nil && !created {
				err = fmt.Errorf("bench: PUT blob %s: already stored", p.blake3[i])
			}
			return err
		},
		get:         get(c0),
		getRedirect: getRedirect,
		post: func(ctx context.Context, i int, c content) error {
			_, err := b.put(ctx, fmt.Sprintf("post-%06d.bin", i), c)
			return err
		},
		pids: pids,
		stop: b.Close,
	}, nil
}

func (h *harness) peersRun(ctx context.Context, run int, t Target, rows peerRows, p peerBlobs) (err error) {
	pt, err := h.openPeer(ctx, t, p)
	if err != nil {
		return err
	}
	defer func() {
		if serr := pt.stop(); err == nil {
			err = serr
		}
	}()
	record := func(name, unit string, v float64) {
		h.rep.set(groupPeers, name, unit, t, run, v)
		h.logf("transfer peers run %d, %s: %s: %.2f %s", run+1, t, name, v, unit)
	}
	var putCPU, getCPU, putSys, getSys float64
	var putBytes, getBytes int64
	// One pass over a set of blobs: every PUT, then every GET right after.
	pass := func(first int, cs []content, putRow, getRow string) error {
		var n int64
		for _, c := range cs {
			n += c.size
		}
		cpu, err := newCPUMeter(pt.pids...)
		if err != nil {
			return err
		}
		start := time.Now()
		for i, c := range cs {
			if err := pt.put(ctx, first+i, c); err != nil {
				return err
			}
		}
		record(putRow, "MB/s", mbps(n, time.Since(start)))
		s, sys, err := cpu.usedSys()
		if err != nil {
			return err
		}
		putCPU += s
		putSys += sys
		putBytes += n
		if cpu, err = newCPUMeter(pt.pids...); err != nil {
			return err
		}
		start = time.Now()
		for i, c := range cs {
			got, err := pt.get(ctx, first+i, h.blobBuf)
			if err != nil {
				return err
			}
			if got != c.size {
				return fmt.Errorf("bench: GET of blob %d gave %d bytes of %d", first+i, got, c.size)
			}
		}
		record(getRow, "MB/s", mbps(n, time.Since(start)))
		if s, sys, err = cpu.usedSys(); err != nil {
			return err
		}
		getCPU += s
		getSys += sys
		getBytes += n
		return nil
	}
	if err := pass(0, p.large, rows.putLarge, rows.getLarge); err != nil {
		return err
	}
	// The large blobs again, through the blob store's own URL: the server
	// answers 307 and the client fetches from MinIO. MinIO alone reads its
	// objects one way only, so its GET figure stands in this row too.
	switch {
	case pt.getRedirect != nil:
		var n int64
		start := time.Now()
		for i, c := range p.large {
			got, err := pt.getRedirect(ctx, i, h.blobBuf)
			if err != nil {
				return err
			}
			if got != c.size {
				return fmt.Errorf("bench: redirected GET of blob %d gave %d bytes of %d", i, got, c.size)
			}
			n += c.size
		}
		record(rows.getRedirect, "MB/s", mbps(n, time.Since(start)))
	case t == MinIO:
		record(rows.getRedirect, "MB/s", h.rep.Row(groupPeers, rows.getLarge).Values[MinIO][run])
	}
	if err := pass(len(p.large), p.small, rows.putSmall, rows.getSmall); err != nil {
		return err
	}
	record(rows.cpuPut, "s/GB", putCPU/(float64(putBytes)/1e9))
	record(rows.cpuGet, "s/GB", getCPU/(float64(getBytes)/1e9))
	record(rows.sysPut, "s/GB", putSys/(float64(putBytes)/1e9))
	record(rows.sysGet, "s/GB", getSys/(float64(getBytes)/1e9))

	// Bytes whose hash the client does not send: Blockstore hashes them
	// itself (and on S3 stores them under a temporary key first). MinIO
	// stores bytes one way only, so its PUT figure stands here too.
	switch {
	case pt.post != nil:
		var n int64
		start := time.Now()
		for i, c := range p.post {
			if err := pt.post(ctx, i, c); err != nil {
				return err
			}
			n += c.size
		}
		record(rows.postLarge, "MB/s", mbps(n, time.Since(start)))
	case t == MinIO:
		row := h.rep.Row(groupPeers, rows.putLarge)
		record(rows.postLarge, "MB/s", row.Values[MinIO][run])
	}
	return nil
}

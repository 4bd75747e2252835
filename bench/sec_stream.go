package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/blockstore/blockstore/client"
)

// streamSection: the peak RSS (VmHWM) of a fresh server while one client
// streams StreamBytes into one asset, then back out; memory must stay flat,
// whatever the size.
func (h *harness) streamSection(ctx context.Context) {
	const g = "memory"
	peak := fmt.Sprintf("server peak RSS (VmHWM) through a %s streamed upload", binaryUnits(h.sz.StreamBytes))
	idle := "server peak RSS (VmHWM) before it"
	speed := "that upload's rate, 1 client"
	down := "server peak RSS (VmHWM) once the asset is downloaded too"
	downSpeed := "that download's rate, 1 client"
	h.rep.row(g, peak, "MiB")
	h.rep.row(g, idle, "MiB")
	h.rep.row(g, speed, "MB/s")
	h.rep.row(g, down, "MiB")
	h.rep.row(g, downSpeed, "MB/s")
	for run := range h.sz.Runs {
		for _, t := range rotate([]Target{Embedded, Postgres}, run) {
			if err := h.streamRun(ctx, run, t, peak, idle, speed, down, downSpeed); err != nil {
				h.fail("stream", t, run, err)
			}
		}
	}
}

func (h *harness) streamRun(ctx context.Context, run int, t Target, peak, idle, speed, down, downSpeed string) error {
	const g = "memory"
	d, err := h.deploy(ctx, t, "stream")
	if err != nil {
		return err
	}
	defer d.Close()
	c := d.srv.Client
	coll, err := c.CreateCollection(ctx, client.NewCollection{Name: "bench stream"})
	if err != nil {
		return fmt.Errorf("bench: create collection: %w", err)
	}
	before, err := d.srv.PeakRSS()
	if err != nil {
		return err
	}
	body := newContent(seedOf("stream", run, 0), h.sz.StreamBytes)
	start := time.Now()
	a, err := c.CreateAsset(ctx, client.NewAsset{Collection: coll.UUID, Name: "lecture.mp4", MediaType: "video/mp4"}, client.Content{Body: body.body()})
	if err != nil {
		return fmt.Errorf("bench: stream %s: %w", binaryUnits(h.sz.StreamBytes), err)
	}
	took := time.Since(start)
	if a.Size != h.sz.StreamBytes {
		return fmt.Errorf("bench: streamed asset has %d bytes, want %d", a.Size, h.sz.StreamBytes)
	}
	after, err := d.srv.PeakRSS()
	if err != nil {
		return err
	}
	h.rep.set(g, peak, "MiB", t, run, float64(after)/mib)
	h.rep.set(g, idle, "MiB", t, run, float64(before)/mib)
	h.rep.set(g, speed, "MB/s", t, run, mbps(h.sz.StreamBytes, took))
	h.logf("stream run %d, %s: peak RSS %d MiB (%d MiB before), %.0f MB/s", run+1, t, after/mib, before/mib, mbps(h.sz.StreamBytes, took))

	start = time.Now()
	d2, err := c.AssetContent(ctx, a.UUID, client.Latest, client.GetOptions{})
	if err != nil {
		return fmt.Errorf("bench: download %s: %w", binaryUnits(h.sz.StreamBytes), err)
	}
	n, err := io.CopyBuffer(discard{}, d2.Body, h.blobBuf)
	d2.Close()
	took = time.Since(start)
	if err != nil || n != h.sz.StreamBytes {
		return fmt.Errorf("bench: downloaded %d of %d bytes: %v", n, h.sz.StreamBytes, err)
	}
	final, err := d.srv.PeakRSS()
	if err != nil {
		return err
	}
	h.rep.set(g, down, "MiB", t, run, float64(final)/mib)
	h.rep.set(g, downSpeed, "MB/s", t, run, mbps(h.sz.StreamBytes, took))
	h.logf("stream run %d, %s: peak RSS %d MiB after the download, %.0f MB/s", run+1, t, final/mib, mbps(h.sz.StreamBytes, took))
	return nil
}

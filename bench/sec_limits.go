package bench

import (
	"context"
	"fmt"
	"runtime"
)

// limitValue records run's value of a limit row (a row whose only column
// is the machine limit).
func (h *harness) limitValue(group, name, unit string, run int, v float64) {
	row := h.rep.row(group, name, unit)
	if row.Limit == nil {
		row.Limit = newSeries(h.sz.Runs)
	}
	for len(row.Limit) <= run {
		row.Limit = append(row.Limit, nan())
	}
	row.Limit[run] = v
}

// limitsSection measures the machine's limits in every run: the rows at the
// top of the table. Sections measure again, in each of their runs, the
// limits they compare with, so that a ratio's two figures are moments apart.
func (h *harness) limitsSection(ctx context.Context) {
	for run := range h.sz.Runs {
		l, err := measureLimits(ctx, h.root, h.sz)
		if err != nil {
			h.fail("limits", Embedded, run, err)
			continue
		}
		const g = "machine limits"
		h.limitValue(g, "BLAKE3, one core", "MB/s", run, l.blake1)
		h.limitValue(g, fmt.Sprintf("BLAKE3, all %d cores", runtime.NumCPU()), "MB/s", run, l.blakeAll)
		h.limitValue(g, fmt.Sprintf("disk: write %s in 1 MiB writes + fsync", binaryUnits(h.sz.LimitBytes)), "MB/s", run, l.diskWrite)
		h.limitValue(g, "disk: read it back, cold (pages dropped)", "MB/s", run, l.diskRead)
		h.limitValue(g, "read it again from the page cache", "MB/s", run, l.cacheRead)
		h.limitValue(g, "disk: 4 KiB write + fsync, one writer", "ops/s", run, l.fsyncOps)
		h.limitValue(g, "filesystem: create a small file (no fsync), one worker", "files/s", run, l.creates)
		h.limitValue(g, "filesystem: unlink a file, one worker", "files/s", run, l.unlinks)
		bare := fmt.Sprintf("bare Go HTTP: GET 4 KiB, %d clients", h.sz.ReadClients)
		h.limitValue(g, bare, "req/s", run, l.bare.perSecond)
		h.limitValue(g, bare+", p50", "ms", run, ms(l.bare.p50))
		h.limitValue(g, bare+", p99", "ms", run, ms(l.bare.p99))
		h.logf("limits run %d: BLAKE3 %.0f MB/s (1 core), %.0f MB/s (all); write+fsync %.0f MB/s; read %.0f MB/s cold, %.0f MB/s cached; %.0f fsync/s; %.0f creates/s, %.0f unlinks/s; bare HTTP %.0f req/s",
			run+1, l.blake1, l.blakeAll, l.diskWrite, l.diskRead, l.cacheRead, l.fsyncOps, l.creates, l.unlinks, l.bare.perSecond)
	}
}

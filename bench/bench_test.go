package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/blockstore/blockstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestHarness runs every section at the smallest scale against the real
// binary, PostgreSQL and MinIO, so that the harness cannot rot. It checks
// that every cell the table promises was filled and that nothing was left
// behind; it asserts no timing.
func TestHarness(t *testing.T) {
	if _, err := testenv.MinIOBinary(); err != nil {
		testenv.Unavailable(t, "MinIO", err)
	}
	_, drop, err := testenv.CreateDatabase(context.Background(), "bench")
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL at "+testenv.RedactURL(testenv.DatabaseURL()), err)
	}
	drop()

	// bazel-remote is only a column of the transfer peers' table: without
	// it the rest of the harness still runs, saying loudly that it did not.
	peers := []Target{Embedded, Postgres, MinIO, BazelRemote}
	if _, err := bazelRemoteBinary(); err != nil {
		if testenv.InCI() {
			t.Fatalf("%v (CI=true: a missing bazel-remote fails the run)", err)
		}
		t.Logf("\n\n*** %v ***\n*** the bazel-remote column of the transfer peers' table did NOT run ***\n", err)
		peers = peers[:3]
	}

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var log strings.Builder
	rep, err := Run(ctx, Options{Scale: Smoke, Dir: dir, Log: &log})
	if err != nil {
		if errors.Is(err, ErrMeasurement) {
			t.Logf("progress:\n%s", log.String())
		}
		t.Fatalf("Run: %v", err)
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) > 0 {
		t.Errorf("Run left %d entries in its directory (%v)", len(left), err)
	}

	// Each row has its figures where the table says the measure applies.
	want := map[string][]Target{
		"machine limits":                                {},
		"ingest over loopback HTTP":                     {Embedded, Postgres, MinIO},
		"reads by hash over loopback HTTP":              {Embedded, Postgres, MinIO},
		"units: ingest":                                 {Embedded, Postgres, MinIO},
		"units: reads":                                  {Embedded, Postgres, MinIO},
		"units: ratios":                                 {Postgres},
		groupUnitCPU:                                    {Embedded, Postgres, MinIO},
		"import (blockstore import)":                    {Embedded, Postgres},
		"copy (blockstore copy)":                        {Embedded, Postgres},
		"garbage collection (blockstore gc --grace 0s)": {Embedded, Postgres},
		"memory":   {Embedded, Postgres},
		"changes":  {Embedded, Postgres},
		groupPeers: peers,
	}
	groups := map[string]int{}
	for _, row := range rep.Rows {
		targets, ok := want[row.Group]
		if !ok {
			t.Errorf("row %q of unexpected group %q", row.Name, row.Group)
			continue
		}
		groups[row.Group]++
		if len(targets) == 0 && (row.Limit == nil || row.Limit.Count() == 0) {
			t.Errorf("limit row %q has no value", row.Name)
		}
		for _, tg := range targets {
			if tg == BazelRemote && strings.HasPrefix(row.Name, "POST") {
				continue // bazel-remote has no way to store bytes it is not told the hash of
			}
			if (tg == Embedded || tg == BazelRemote) && strings.HasSuffix(row.Name, "Prefer: redirect") {
				continue // only S3 deployments redirect
			}
			if tg != Embedded && strings.HasSuffix(row.Name, "commits per WAL sync") {
				continue // only the embedded engine syncs a WAL of its own
			}
			if (tg != Postgres && row.Name == cpuDatabase) || (tg == MinIO && row.Name == cpuLeft) {
				continue // only one target has a database; MinIO alone has no goal
			}
			v := row.Values[tg]
			if v == nil || v.Count() == 0 || math.IsNaN(v.Median()) || v.Median() < 0 {
				t.Errorf("%s: %s: no figure for %s", row.Group, row.Name, tg)
			}
		}
	}
	for g := range want {
		if groups[g] == 0 {
			t.Errorf("no row of group %q", g)
		}
	}
	if row := rep.Row("import (blockstore import)", "bytes uploaded by the re-import"); row == nil || row.Values[Embedded].Max() != 0 || row.Values[Postgres].Max() != 0 {
		t.Errorf("the re-import uploaded bytes: %+v", row)
	}

	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| measure", "Blockstore embedded", "MinIO alone", "machine limit", "BLAKE3, one core", "emb ÷ bazel-remote", "server CPU per GB of PUT"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("the markdown lacks %q:\n%s", s, md.String())
		}
	}
	t.Logf("\n%s", md.String())
}

func TestSeriesAndRatios(t *testing.T) {
	s := Series{3, math.NaN(), 1, 2}
	if s.Median() != 2 || s.Min() != 1 || s.Max() != 3 || s.Count() != 3 {
		t.Fatalf("series %v: median %v min %v max %v count %d", s, s.Median(), s.Min(), s.Max(), s.Count())
	}
	q := ratio(Series{2, 4, 6}, Series{1, math.NaN(), 3})
	if q.Count() != 2 || q.Median() != 2 {
		t.Fatalf("ratio %v", q)
	}
	if got := cell(Series{1500, 1200, 1800}); got != "1,500 (1,200–1,800)" {
		t.Fatalf("cell: %q", got)
	}
	if got := formatNumber(0); got != "0" {
		t.Fatalf("formatNumber(0) = %q", got)
	}
	l := Latencies{5, 1, 4, 2, 3}
	if l.Quantile(0.5) != 3 || l.Quantile(0.99) != 5 {
		t.Fatalf("quantiles of %v: %v %v", l, l.Quantile(0.5), l.Quantile(0.99))
	}
}

func TestContent(t *testing.T) {
	c := newContent(7, 9*mib+5)
	whole := make([]byte, c.size)
	if n, err := c.ReadAt(whole, 0); n != len(whole) || err != nil {
		t.Fatalf("ReadAt whole: %d, %v", n, err)
	}
	// Any range reads the same bytes as the whole.
	for _, r := range [][2]int64{{0, 10}, {5, 20}, {patternBlock - 3, 40}, {2*patternBlock + 1, mib}, {c.size - 7, 7}} {
		p := make([]byte, r[1])
		if _, err := c.ReadAt(p, r[0]); err != nil {
			t.Fatalf("ReadAt %v: %v", r, err)
		}
		if string(p) != string(whole[r[0]:r[0]+r[1]]) {
			t.Fatalf("ReadAt %v differs from the whole", r)
		}
	}
	if c.hash() == newContent(8, c.size).hash() {
		t.Fatal("two seeds give the same bytes")
	}
	if doc := olx(1, 2, 4096); len(doc) != 4096 || !strings.HasSuffix(doc, "</problem>\n") {
		t.Fatalf("olx: %d bytes", len(doc))
	}
}

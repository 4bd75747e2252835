package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Target is what a measurement runs against.
type Target int

const (
	// Embedded is Blockstore on the embedded default (Pebble, blob directory).
	Embedded Target = iota
	// Postgres is Blockstore on PostgreSQL + MinIO.
	Postgres
	// MinIO is MinIO alone, through minio-go.
	MinIO
	// BazelRemote is bazel-remote alone (a CAS cache that neither fsyncs
	// nor verifies), over its HTTP API: only in the transfer peers' table.
	BazelRemote
	numTargets
)

func (t Target) String() string {
	switch t {
	case Embedded:
		return "embedded"
	case Postgres:
		return "postgres+minio"
	case MinIO:
		return "minio"
	case BazelRemote:
		return "bazel-remote"
	}
	return "target(" + strconv.Itoa(int(t)) + ")"
}

// Row is one line of the table: a measure on each target, the limit it is
// compared with, and the ratios computed run by run.
type Row struct {
	Group string
	Name  string
	Unit  string
	// Values per target; nil where the measure does not apply.
	Values [numTargets]Series
	// Limit is the machine's limit for this measure (nil: none); LimitName
	// says which.
	Limit     Series
	LimitName string
	// Goals are what the issue asks of this row's ratios, printed beside
	// them in the peers' table (empty: none).
	Goals peerGoals
}

// Report is the outcome of Run.
type Report struct {
	Scale    Scale
	Sizes    Sizes
	Machine  Machine
	Started  time.Time
	Duration time.Duration
	Command  string
	Rows     []*Row
	// Notes are printed under the table: targets from the issues, what was
	// checked, what went wrong in a run.
	Notes []string
}

// Row returns the row of group and name, or nil.
func (r *Report) Row(group, name string) *Row {
	for _, row := range r.Rows {
		if row.Group == group && row.Name == name {
			return row
		}
	}
	return nil
}

// row returns the row of group and name, adding it when absent.
func (r *Report) row(group, name, unit string) *Row {
	if row := r.Row(group, name); row != nil {
		return row
	}
	row := &Row{Group: group, Name: name, Unit: unit}
	r.Rows = append(r.Rows, row)
	return row
}

// set records v as run's value of target t in the row.
func (r *Report) set(group, name, unit string, t Target, run int, v float64) {
	row := r.row(group, name, unit)
	if row.Values[t] == nil {
		row.Values[t] = newSeries(r.Sizes.Runs)
	}
	for len(row.Values[t]) <= run {
		row.Values[t] = append(row.Values[t], math.NaN())
	}
	row.Values[t][run] = v
}

// limit makes lim (the whole series, one value per run) the row's limit.
func (r *Report) limit(group, name, unit, limitName string, lim Series) {
	row := r.row(group, name, unit)
	row.Limit, row.LimitName = lim, limitName
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// formatNumber prints v with a precision that suits its size.
func formatNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "—"
	case a >= 100 || v == math.Trunc(v):
		return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.1 || a == 0:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// cell prints a series as "median (min–max)", or the median alone when
// there is one value.
func cell(s Series) string {
	if s == nil || s.Count() == 0 {
		return "—"
	}
	med := formatNumber(s.Median())
	if s.Count() == 1 || s.Min() == s.Max() {
		return med
	}
	return fmt.Sprintf("%s (%s–%s)", med, formatNumber(s.Min()), formatNumber(s.Max()))
}

// ratioCell prints the median of the run-by-run ratio of s to d.
func ratioCell(s, d Series) string {
	if s == nil || d == nil {
		return ""
	}
	q := ratio(s, d)
	if q.Count() == 0 {
		return ""
	}
	return strconv.FormatFloat(q.Median(), 'f', 2, 64) + "×"
}

var tableHeader = []string{
	"measure", "unit", "Blockstore embedded", "Blockstore PG+MinIO", "MinIO alone",
	"machine limit", "emb ÷ MinIO", "PG ÷ MinIO", "emb ÷ limit", "PG ÷ limit",
}

// Table returns the rows of the table as cells, header first.
func (r *Report) Table() [][]string {
	out := [][]string{tableHeader}
	group := ""
	for _, row := range r.Rows {
		if row.Group == groupPeers {
			continue
		}
		name := row.Name
		if row.Group != group {
			group = row.Group
			name = "**" + group + "**: " + name
		}
		lim := ""
		if row.Limit != nil {
			lim = strings.TrimSpace(row.LimitName + " " + cell(row.Limit))
		}
		out = append(out, []string{
			name, row.Unit,
			cell(row.Values[Embedded]), cell(row.Values[Postgres]), cell(row.Values[MinIO]),
			lim,
			ratioCell(row.Values[Embedded], row.Values[MinIO]),
			ratioCell(row.Values[Postgres], row.Values[MinIO]),
			ratioCell(row.Values[Embedded], row.Limit),
			ratioCell(row.Values[Postgres], row.Limit),
		})
	}
	return out
}

// WriteMarkdown writes the report: where and how it was measured, the
// table (columns padded so that it reads as well in a terminal), and the
// notes.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Blockstore benchmarks (`%s` scale)\n\n", r.Scale)
	fmt.Fprintf(&b, "- date: %s (took %s)\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Duration.Round(time.Second))
	fmt.Fprintf(&b, "- machine: %s\n", r.Machine)
	if r.Command != "" {
		fmt.Fprintf(&b, "- command: `%s`\n", r.Command)
	}
	fmt.Fprintf(&b, "- each figure: median (min–max) of %d run(s); ratios are run-by-run ratios, their median (for a rate >1× is faster, for a latency or a time >1× is slower)\n\n", r.Sizes.Runs)

	writeTable(&b, r.Table())
	if peers := r.PeerTable(); len(peers) > 1 {
		fmt.Fprintf(&b, "\n## %s\n\n", groupPeers)
		writeTable(&b, peers)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTable writes rows (header first) as a markdown table whose columns
// are padded so that it reads as well in a terminal; every column but the
// first two is right-aligned.
func writeTable(b *strings.Builder, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		b.WriteString("\n")
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i := range sep {
		if i >= 2 {
			sep[i] = strings.Repeat("-", width[i]-1) + ":"
		} else {
			sep[i] = strings.Repeat("-", width[i])
		}
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
}

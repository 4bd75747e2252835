package storecopy

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
)

// WriteText writes the summary for a person.
func (s Summary) WriteText(w io.Writer) error {
	rate := float64(s.BytesSent) / max(s.Seconds, 1e-9)
	_, err := fmt.Fprintf(w, `source          %s
destination     %s
entities        %d (%d created, %d updated, %d unchanged, %d deleted)
versions        %d written, %d removed
blobs           %d sent (%s), %d already there (%s)
time            %s (%s/s)
`, s.Source, s.Destination,
		s.EntitiesDone, s.EntitiesCreated, s.EntitiesUpdated, s.EntitiesDone-s.EntitiesCreated-s.EntitiesUpdated, s.EntitiesDeleted,
		s.Versions, s.VersionsRemoved,
		s.Blobs, humanize.IBytes(uint64(s.BytesSent)), s.BlobsSkipped, humanize.IBytes(uint64(s.BytesSkipped)),
		(time.Duration(s.Seconds * float64(time.Second))).Round(time.Millisecond), humanize.IBytes(uint64(rate)))
	return err
}

// LogInterval is how often plain progress lines are written when the
// output is not a terminal.
const LogInterval = 10 * time.Second

// Display shows a copy's progress on w: a bar over the source's entities on
// a terminal, a line every LogInterval otherwise. Pass Update as
// Options.Progress (with Interval) and call Finish when Run returns.
type Display struct {
	w        io.Writer
	bar      *progressbar.ProgressBar
	mu       sync.Mutex
	interval time.Duration
	last     time.Time
}

// NewDisplay returns a Display on w; terminal says whether w is one.
func NewDisplay(w io.Writer, terminal bool) *Display {
	d := &Display{w: w, interval: LogInterval, last: time.Now()}
	if terminal {
		d.interval = 200 * time.Millisecond
		d.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionSetDescription("copy"),
		)
	}
	return d
}

// Interval is how often Update wants to be called.
func (d *Display) Interval() time.Duration {
	if d.bar != nil {
		return d.interval
	}
	return time.Second
}

// Update shows s.
func (d *Display) Update(s Summary) {
	d.mu.Lock()
	defer d.mu.Unlock()
	desc := fmt.Sprintf("copy: %s sent, %s already there", humanize.IBytes(uint64(s.BytesSent)), humanize.IBytes(uint64(s.BytesSkipped)))
	if d.bar != nil {
		if d.bar.GetMax64() != s.EntitiesTotal && s.EntitiesTotal > 0 {
			d.bar.ChangeMax64(s.EntitiesTotal)
		}
		d.bar.Describe(desc)
		_ = d.bar.Set64(min(s.EntitiesDone, max(s.EntitiesTotal, s.EntitiesDone)))
		return
	}
	if time.Since(d.last) < d.interval {
		return
	}
	d.last = time.Now()
	fmt.Fprintf(d.w, "copy: %d/%d entities, %d versions written, %d blobs sent (%s), %d already there (%s)\n",
		s.EntitiesDone, s.EntitiesTotal, s.Versions, s.Blobs, humanize.IBytes(uint64(s.BytesSent)),
		s.BlobsSkipped, humanize.IBytes(uint64(s.BytesSkipped)))
}

// Finish ends the bar (a terminal's line is left complete).
func (d *Display) Finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil {
		_ = d.bar.Finish()
		fmt.Fprintln(d.w)
	}
}

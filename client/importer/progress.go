package importer

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
)

// DefaultLogInterval is how often the plain progress lines are written when
// the output is not a terminal.
const DefaultLogInterval = 10 * time.Second

// counters are the running totals of an import or an export; progress and
// the summary read them.
type counters struct {
	filesTotal, bytesTotal  atomic.Int64
	filesDone, bytesDone    atomic.Int64 // hashed (import) or written (export)
	blobsUploaded           atomic.Int64
	bytesUploaded           atomic.Int64
	created, versions, same atomic.Int64
	failed                  atomic.Int64
}

// progress shows counters while work runs: a bar on a terminal, a line
// every interval otherwise. A nil *progress shows nothing.
type progress struct {
	w        io.Writer
	verb     string // "import" or "export"
	c        *counters
	bar      *progressbar.ProgressBar
	interval time.Duration
	start    time.Time
	stop     chan struct{}
	done     sync.WaitGroup
	mu       sync.Mutex // orders the bar's and the messages' writes
}

func newProgress(w io.Writer, terminal bool, interval time.Duration, verb string, c *counters) *progress {
	if w == nil {
		return nil
	}
	if interval <= 0 {
		interval = DefaultLogInterval
	}
	p := &progress{w: w, verb: verb, c: c, interval: interval, start: time.Now(), stop: make(chan struct{})}
	if terminal {
		p.bar = progressbar.NewOptions64(c.bytesTotal.Load(),
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionSetDescription(p.describe()),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
		p.interval = 200 * time.Millisecond
	}
	p.done.Add(1)
	go p.run()
	return p
}

func (p *progress) describe() string {
	s := fmt.Sprintf("%s %d/%d files", p.verb, p.c.filesDone.Load(), p.c.filesTotal.Load())
	if p.verb == "import" {
		s += fmt.Sprintf(", %s uploaded, %d entities", humanize.IBytes(uint64(p.c.bytesUploaded.Load())),
			p.c.created.Load()+p.c.versions.Load()+p.c.same.Load())
	}
	return s
}

func (p *progress) run() {
	defer p.done.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.show()
		}
	}
}

func (p *progress) show() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		if total := p.c.bytesTotal.Load(); p.bar.GetMax64() != total {
			p.bar.ChangeMax64(total) // a file changed size while hashed
		}
		p.bar.Describe(p.describe())
		_ = p.bar.Set64(p.c.bytesDone.Load())
		return
	}
	fmt.Fprintln(p.w, p.line())
}

// line is one plain progress line: counts, rate and the time left.
func (p *progress) line() string {
	el := time.Since(p.start)
	done, total := p.c.bytesDone.Load(), p.c.bytesTotal.Load()
	rate := float64(done) / max(el.Seconds(), 1e-9)
	s := fmt.Sprintf("%s: %d/%d files, %s/%s %s (%s/s)", p.verb, p.c.filesDone.Load(), p.c.filesTotal.Load(),
		humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)), map[string]string{"import": "hashed", "export": "written"}[p.verb],
		humanize.IBytes(uint64(rate)))
	if p.verb == "import" {
		s += fmt.Sprintf(", %s uploaded, %d created, %d new versions, %d unchanged",
			humanize.IBytes(uint64(p.c.bytesUploaded.Load())), p.c.created.Load(), p.c.versions.Load(), p.c.same.Load())
	}
	if f := p.c.failed.Load(); f > 0 {
		s += fmt.Sprintf(", %d failed", f)
	}
	if rate > 0 && done < total {
		s += fmt.Sprintf(", about %s left", time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second))
	}
	return s
}

// finish stops the display and shows the last state.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
	if p.bar != nil {
		p.bar.Describe(p.describe())
		_ = p.bar.Set64(p.c.bytesDone.Load())
		if !p.bar.IsFinished() {
			_ = p.bar.Exit()
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintln(p.w, p.line())
}

// logf writes a message line (a warning) to the progress output, if any.
func (p *progress) logf(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

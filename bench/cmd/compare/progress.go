package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// progressAfter is how long a run goes before progress appears: short runs
// (and tests) stay quiet.
const progressAfter = 2 * time.Second

// progress redraws one status line on w twice a second once the run is older
// than progressAfter. When w is not a terminal (a file, a pipe, a CI log) it
// instead prints one plain line per finished step: there, \r redraws would
// pile up into one enormous line.
type progress struct {
	w     io.Writer
	start time.Time
	after time.Duration // quiet until the run is this old
	every time.Duration // redraw interval
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	label   string
	total   int
	counter *atomic.Int64
	width   int  // columns drawn: the longest status line, at least 70; 0 = none drawn
	lines   bool // not a terminal: a plain line per finished step, no redraws
}

func newProgress(w io.Writer, quiet bool) *progress {
	return startProgress(w, quiet, isTerminal(w), progressAfter, 500*time.Millisecond)
}

// isTerminal reports whether w is a character device, the only kind of output
// where redrawing a line with \r works.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startProgress is newProgress with the output kind, delay and redraw
// interval chosen.
func startProgress(w io.Writer, quiet, tty bool, after, every time.Duration) *progress {
	p := &progress{w: w, start: time.Now(), after: after, every: every,
		quit: make(chan struct{}), done: make(chan struct{}), lines: !quiet && !tty}
	if quiet || !tty {
		close(p.done)
		return p
	}
	go p.loop()
	return p
}

// begin switches the status line to a new step of total requests, counted by
// counter.
func (p *progress) begin(label string, total int, counter *atomic.Int64) {
	p.mu.Lock()
	p.finishLine()
	p.label, p.total, p.counter = label, total, counter
	p.mu.Unlock()
}

// status describes the current step. p.mu must be held and p.counter set.
func (p *progress) status() string {
	round := time.Second // a redrawn line ticks visibly anyway
	if p.lines {
		round = 100 * time.Millisecond // a logged line is all there is
	}
	return fmt.Sprintf("%s  %d/%d requests  (%s elapsed)",
		p.label, p.counter.Load(), p.total, time.Since(p.start).Round(round))
}

// finishLine prints the step that just ended as one plain line, in line mode.
// p.mu must be held.
func (p *progress) finishLine() {
	if p.lines && p.counter != nil {
		fmt.Fprintln(p.w, p.status())
		p.counter = nil
	}
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			p.mu.Lock()
			if p.width > 0 {
				fmt.Fprintf(p.w, "\r%*s\r", p.width, "")
			}
			p.mu.Unlock()
			return
		case <-t.C:
			if time.Since(p.start) < p.after {
				continue
			}
			p.mu.Lock()
			if p.counter != nil {
				// Padded to the longest line so far, so a shorter
				// line leaves nothing of a longer one behind.
				s := p.status()
				p.width = max(p.width, len(s), 70)
				fmt.Fprintf(p.w, "\r%-*s", p.width, s)
			}
			p.mu.Unlock()
		}
	}
}

// stop erases the status line and waits for the redraw goroutine, or in line
// mode prints the last step. It is safe to call more than once.
func (p *progress) stop() {
	p.once.Do(func() {
		select {
		case <-p.done: // quiet or line mode: no goroutine
			p.mu.Lock()
			p.finishLine()
			p.mu.Unlock()
		default:
			close(p.quit)
		}
	})
	<-p.done
}

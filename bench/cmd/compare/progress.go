package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progressAfter is how long a run goes before progress appears: short runs
// (and tests) stay quiet.
const progressAfter = 2 * time.Second

// progress redraws one status line on w twice a second once the run is older
// than progressAfter.
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
	drawn   bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	return startProgress(w, quiet, progressAfter, 500*time.Millisecond)
}

// startProgress is newProgress with the delay and redraw interval chosen.
func startProgress(w io.Writer, quiet bool, after, every time.Duration) *progress {
	p := &progress{w: w, start: time.Now(), after: after, every: every,
		quit: make(chan struct{}), done: make(chan struct{})}
	if quiet {
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
	p.label, p.total, p.counter = label, total, counter
	p.mu.Unlock()
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			p.mu.Lock()
			if p.drawn {
				fmt.Fprintf(p.w, "\r%-70s\r", "")
			}
			p.mu.Unlock()
			return
		case <-t.C:
			if time.Since(p.start) < p.after {
				continue
			}
			p.mu.Lock()
			if p.counter != nil {
				fmt.Fprintf(p.w, "\r%-70s", fmt.Sprintf("%s  %d/%d requests  (%s elapsed)",
					p.label, p.counter.Load(), p.total, time.Since(p.start).Round(time.Second)))
				p.drawn = true
			}
			p.mu.Unlock()
		}
	}
}

// stop erases the status line and waits for the redraw goroutine. It is safe
// to call more than once.
func (p *progress) stop() {
	p.once.Do(func() {
		select {
		case <-p.done: // quiet
		default:
			close(p.quit)
		}
	})
	<-p.done
}

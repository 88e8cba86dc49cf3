package mux

import (
	"sync"
	"time"
)

// deadline is a settable point in time that closes a channel when it passes, the shape of the
// standard library's net.Pipe deadlines: waiters select on wait(), setters never block.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
	at     time.Time     // the deadline; zero for none
}

func newDeadline() deadline { return deadline{cancel: make(chan struct{})} }

// set moves the deadline to t; the zero time means none. A passed t expires at once.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: its close is done, so wait() reports expired until reset
	}
	d.timer = nil
	d.at = t
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		c := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel that is closed once the deadline has passed.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	c := d.cancel
	d.mu.Unlock()
	return c
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// when returns the deadline, or the zero time for none.
func (d *deadline) when() time.Time {
	d.mu.Lock()
	t := d.at
	d.mu.Unlock()
	return t
}

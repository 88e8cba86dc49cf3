package mux

import (
	"sync"
	"time"
)

// deadline is a settable point in time that closes a channel when it passes, the shape of the
// standard library's net.Pipe deadlines: waiters select on wait(), setters never block. Its
// timer is made once and moved by later sets, so setting a deadline per call (as net/http
// does) allocates nothing.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer   // runs expire; nil until the first deadline in the future
	cancel chan struct{} // closed when the deadline passes
	at     time.Time     // the deadline; zero for none
}

func newDeadline() deadline { return deadline{cancel: make(chan struct{})} }

// set moves the deadline to t; the zero time means none. A passed t expires at once.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop() // an expiry already running finds d.at moved and does nothing
	}
	d.at = t
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !closed {
			close(d.cancel)
		}
		return
	}
	if closed {
		d.cancel = make(chan struct{})
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.expire)
	} else {
		d.timer.Reset(dur)
	}
}

// expire closes the channel if the deadline in force has passed. A timer armed for an earlier
// deadline that fires after set moved it finds none (and leaves it) or a later one, for which
// the timer is armed again (as it is if the wall clock lags the timer's monotonic one).
func (d *deadline) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.at.IsZero() || isClosed(d.cancel) {
		return
	}
	if left := time.Until(d.at); left > 0 {
		d.timer.Reset(left)
		return
	}
	close(d.cancel)
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

package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// maxEvents and the interval bounds cap what a client may ask for.
const (
	maxEvents   = 10000
	minInterval = time.Millisecond
	maxInterval = time.Minute
)

// Events is the backend: GET /events?n=10&interval=100ms answers with a
// text/event-stream and emits events with ids 1..n, one every interval, flushing each
// at once. A Last-Event-ID request header resumes after that id (EventSource reconnects
// send it).
type Events struct {
	// BeforeEmit, if set, is called when event id is due, before it is written; it may
	// block to hold the stream back (tests use it to pace the stream by the client).
	BeforeEmit func(id int)
	// Done, if non-nil, ends every stream when closed (for shutdown).
	Done <-chan struct{}
}

// ServeHTTP streams the events.
func (e *Events) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/events" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	n, interval := 10, 100*time.Millisecond
	var err error
	if v := q.Get("n"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 0 || n > maxEvents {
			http.Error(w, fmt.Sprintf("n: want 0 to %d", maxEvents), http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("interval"); v != "" {
		if interval, err = time.ParseDuration(v); err != nil || interval < minInterval || interval > maxInterval {
			http.Error(w, "interval: want 1ms to 1m", http.StatusBadRequest)
			return
		}
	}
	first := 1
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		last, err := strconv.Atoi(v)
		if err != nil || last < 0 {
			http.Error(w, "bad Last-Event-ID", http.StatusBadRequest)
			return
		}
		first = last + 1
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Backend-Proto", r.Proto)
	rc := http.NewResponseController(w)
	fmt.Fprintf(w, "retry: %d\n\n", interval.Milliseconds()) // send headers now
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for id := first; id <= n; id++ {
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-e.Done:
			return
		}
		if e.BeforeEmit != nil {
			e.BeforeEmit(id)
		}
		now := time.Now()
		fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"n\":%d,\"sent\":%q}\n\n", id, id, now.Format(time.RFC3339Nano))
		if rc.Flush() != nil {
			return
		}
	}
}

package demux

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Concurrent requests multiplex over MaxConns upstream connections, never
// above the advertised stream limit, queueing FIFO in waves with no retry or reset.
func TestMultiplexWithinLimits(t *testing.T) {
	for _, tc := range []struct{ maxConns, maxStreams, clients int }{
		{1, 4, 20},
		{2, 3, 18},
		{1, 1, 8}, // a burst at cold start must not exceed 1 before SETTINGS arrive
	} {
		t.Run(fmt.Sprintf("conns=%d/streams=%d/clients=%d", tc.maxConns, tc.maxStreams, tc.clients), func(t *testing.T) {
			be := newBackend(t, tc.maxStreams, false, func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(50 * time.Millisecond)
				w.Write([]byte("ok " + r.URL.Query().Get("i")))
			})
			f := newFront(t, Config{Upstream: "h2c://" + be.addr, MaxConns: tc.maxConns})
			var wg sync.WaitGroup
			start := time.Now()
			for i := range tc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, body := f.get(t, "/?i="+strconv.Itoa(i))
					if code != 200 || body != "ok "+strconv.Itoa(i) {
						t.Errorf("request %d: %d %q", i, code, body)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			if got := be.ln.accepts.Load(); got != int64(tc.maxConns) {
				t.Errorf("backend accepted %d conns, want %d", got, tc.maxConns)
			}
			if got := be.maxPerConn(); got > tc.maxStreams {
				t.Errorf("backend saw %d concurrent streams on one conn, advertised %d", got, tc.maxStreams)
			}
			if n := be.h2errs.Load(); n != 0 {
				t.Errorf("backend counted %d HTTP/2 errors (%s)", n, be.errKindsString())
			}
			st := f.p.Stats()
			if st.Retries != 0 || st.Resets != 0 || st.GoAways != 0 {
				t.Errorf("stats: retries %d resets %d goaways %d, want 0", st.Retries, st.Resets, st.GoAways)
			}
			if st.Requests != uint64(tc.clients) || st.StreamsInUse != 0 || st.Queued != 0 {
				t.Errorf("stats after: %+v", st)
			}
			// Waves: at least ceil(clients / (conns*streams)) rounds of 50 ms. No retry
			// backoff was paid (Retries and Resets are 0 above); the upper bound only
			// catches hangs, as this box is shared and slow under -race.
			waves := (tc.clients + tc.maxConns*tc.maxStreams - 1) / (tc.maxConns * tc.maxStreams)
			if min := time.Duration(waves) * 50 * time.Millisecond; elapsed < min || elapsed > min+8*time.Second {
				t.Errorf("took %v for %d waves of 50ms", elapsed, waves)
			}
			t.Logf("%v, stats %+v", elapsed, st)
		})
	}
}

// Waiting requests are served strictly in arrival order.
func TestQueueFIFO(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	be := newBackend(t, 1, false, func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("i")
		if id == "hold" {
			<-release
		} else {
			mu.Lock()
			order = append(order, id)
			mu.Unlock()
		}
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, MaxConns: 1})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.get(t, "/?i=hold") }()
	waitFor(t, 5*time.Second, "hold in flight", func() bool { return f.p.Stats().StreamsInUse == 1 })
	const n = 6
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f.get(t, "/?i="+strconv.Itoa(i)) }()
		waitFor(t, 5*time.Second, "queued", func() bool { return f.p.Stats().Queued == i+1 })
	}
	close(release)
	wg.Wait()
	want := "[0 1 2 3 4 5]"
	if got := fmt.Sprint(order); got != want {
		t.Errorf("service order %s, want %s", got, want)
	}
	// The first request waited for the dial, the rest behind it.
	if st := f.p.Stats(); st.QueueWaits != n+1 || st.QueueWaitTotal <= 0 || st.QueueWaitMax <= 0 {
		t.Errorf("queue stats %+v", st)
	}
}

// A queued request gives up after QueueTimeout with 503.
func TestQueueTimeout503(t *testing.T) {
	release := make(chan struct{})
	be := newBackend(t, 1, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, QueueTimeout: 500 * time.Millisecond, MaxConns: 1})
	done := make(chan int)
	go func() { c, _ := f.get(t, "/hold"); done <- c }()
	waitFor(t, 5*time.Second, "hold in flight", func() bool { return f.p.Stats().StreamsInUse == 1 })
	resp, err := f.client.Get(f.url + "/queued")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("queued request: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(release)
	if c := <-done; c != 200 {
		t.Errorf("held request: %d", c)
	}
	if st := f.p.Stats(); st.QueueTimeouts != 1 {
		t.Errorf("QueueTimeouts = %d, want 1", st.QueueTimeouts)
	}
}

// On a machine with more cores, HTTP/2 load spreads over several connections before
// any is full (GOMAXPROCS/2 of them): with 4 cores, two connections share 8 requests
// that one connection of 10 streams could carry.
func TestLoadSpreadsOverConnsWithCores(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(8)
	be := newBackend(t, 10, false, func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.get(t, "/")
		}()
	}
	arrived.Wait()
	close(release)
	wg.Wait()
	// The second connection is dialled in the background once the first carries its share
	// (5 streams), so the requests can end before the backend has accepted it.
	waitFor(t, 5*time.Second, "a second upstream connection", func() bool { return be.ln.accepts.Load() >= 2 })
	if got := be.ln.accepts.Load(); got != 2 {
		t.Errorf("upstream conns %d, want 2 (one per two cores)", got)
	}
}

// waitRecorder is a QueueWaitObserver that keeps what it is told.
type waitRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *waitRecorder) ObserveQueueWait(d time.Duration) {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
}

// Config.QueueWaitObserver is told every request's queue wait once: 0 for one that
// found a free stream, the wait for one that queued.
func TestQueueWaitObserverSeesEveryRequest(t *testing.T) {
	release := make(chan struct{})
	be := newBackend(t, 1, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
	})
	rec := &waitRecorder{}
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, MaxConns: 1, QueueWaitObserver: rec})
	f.get(t, "/warm") // waits for the connection to be dialled
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.get(t, "/hold")
	}()
	waitFor(t, 5*time.Second, "the first request holding the one stream", func() bool { return f.p.Stats().StreamsInUse == 1 })
	go func() {
		waitFor(t, 5*time.Second, "the second request queued", func() bool { return f.p.Stats().Queued == 1 })
		close(release)
	}()
	f.get(t, "/queued")
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.waits) != 3 || rec.waits[1] != 0 || rec.waits[2] <= 0 {
		t.Errorf("observed %v, want [the dial's wait, 0, >0]", rec.waits)
	}
}

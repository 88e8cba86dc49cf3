package demux

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// No client's slowness holds capacity that others need.
// Each attack runs against a real h2c backend whose handlers behave normally, through
// a Proxy with Config{Upstream} only, served by NewServer with its defaults. While it
// runs, a fresh HTTP/1.1 GET on a new connection is answered within 2 s, five times
// over the attack; once the attackers close their connections, the upstream streams
// they held are released within 2 s.

const (
	fairProbeLimit  = 2 * time.Second // a fresh GET must be answered within this
	fairProbes      = 5
	fairProbeGap    = 300 * time.Millisecond
	fairReleaseWait = 2 * time.Second  // attackers gone → StreamsInUse back to 0
	bigResponse     = 64 << 20         // bytes /big streams
	fairTrickleGap  = 1 * time.Second  // the attack sends a byte every 5 s
	fairConnLife    = 30 * time.Second // deadline on every attacker connection
	pollMaxHold     = 3 * time.Second  // the longest /poll holds its answer
	slowPollHold    = 10 * time.Second // /slow: far longer than the attack
	fairSetupWait   = 3 * time.Second  // at most this long to see the attack land
	fairUploadWait  = 1500 * time.Millisecond
)

// fairBackend is an h2c upstream with ordinary handlers:
//
//	/        answers "ok" at once
//	/big     streams 64 MB (until the proxy gives up on the stream)
//	/slow    answers after 10 s, or when the request is cancelled
//	/poll    a long poll: answers "polled" once pollTarget polls are in flight at
//	         the same time, or after 3 s
//	/upload  reads the whole request body and answers "got N"
type fairBackend struct {
	*backend
	big, slow, upload atomic.Int64 // handlers started

	pollTarget int64
	pollIn     atomic.Int64
	pollPeak   atomic.Int64
	pollAll    chan struct{}
	pollOnce   sync.Once
}

func newFairBackend(t *testing.T, pollTarget int) *fairBackend {
	fb := &fairBackend{pollTarget: int64(pollTarget), pollAll: make(chan struct{})}
	chunk := make([]byte, 32<<10)
	fb.backend = newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			io.WriteString(w, "ok")
		case "/big":
			fb.big.Add(1)
			w.Header().Set("Content-Length", strconv.Itoa(bigResponse))
			for sent := 0; sent < bigResponse; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/slow":
			fb.slow.Add(1)
			select {
			case <-r.Context().Done():
				return
			case <-time.After(slowPollHold):
			}
			io.WriteString(w, "slow")
		case "/poll":
			n := fb.pollIn.Add(1)
			defer fb.pollIn.Add(-1)
			for p := fb.pollPeak.Load(); n > p && !fb.pollPeak.CompareAndSwap(p, n); p = fb.pollPeak.Load() {
			}
			if n >= fb.pollTarget {
				fb.pollOnce.Do(func() { close(fb.pollAll) })
			}
			select {
			case <-r.Context().Done():
				return
			case <-fb.pollAll:
			case <-time.After(pollMaxHold):
			}
			io.WriteString(w, "polled")
		case "/upload":
			fb.upload.Add(1)
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "got %d %v", n, err)
		default:
			http.NotFound(w, r)
		}
	})
	return fb
}

// probeDuringAttack sends fairProbes fresh GETs, fairProbeGap apart, and fails the
// test at the first one not answered 200 "ok" within fairProbeLimit.
func probeDuringAttack(t *testing.T, f *servedFront, what string) {
	t.Helper()
	for i := range fairProbes {
		if i > 0 {
			time.Sleep(fairProbeGap)
		}
		d, err := probeFresh(f.url, "/", "ok", fairProbeLimit)
		if err != nil {
			t.Errorf("during %s, probe %d of %d: %v after %v (stats %+v)", what, i+1, fairProbes, err, d.Round(time.Millisecond), f.p.Stats())
			return
		}
		t.Logf("probe %d answered in %v", i+1, d.Round(time.Millisecond))
	}
}

// expectStreamsReleased checks that StreamsInUse drops to 0 within fairReleaseWait
// once the attackers are gone.
func expectStreamsReleased(t *testing.T, f *servedFront, what string) {
	t.Helper()
	start := time.Now()
	if !waitSoft(fairReleaseWait, func() bool { return f.p.Stats().StreamsInUse == 0 }) {
		t.Errorf("%v after the %s ended, upstream streams still held: %+v", time.Since(start).Round(time.Millisecond), what, f.p.Stats())
	}
}

// rawAttackers are HTTP/1.1 attacker connections over plain TCP.
type rawAttackers struct {
	mu    sync.Mutex
	conns []net.Conn
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newRawAttackers() *rawAttackers { return &rawAttackers{stop: make(chan struct{})} }

func (a *rawAttackers) add(c net.Conn) {
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
}

// dial opens one attacker connection to addr, alive for fairConnLife at most,
// shapes it with setup (if any) and sends head.
func (a *rawAttackers) dial(t *testing.T, addr, head string, setup func(net.Conn)) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(fairConnLife))
	if setup != nil {
		setup(c)
	}
	a.add(c)
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// end stops the attackers' goroutines and closes their connections.
func (a *rawAttackers) end() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	a.mu.Lock()
	for _, c := range a.conns {
		c.Close()
	}
	a.conns = nil
	a.mu.Unlock()
	a.wg.Wait()
}

func TestFairnessUnderHostileClients(t *testing.T) {
	// (a) Slow request bodies (slowloris body, R.U.D.Y.): 100 clients announce a large
	// Content-Length and trickle one byte at a time.
	t.Run("slow-upload", func(t *testing.T) {
		be := newFairBackend(t, 0)
		f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, false)
		atk := newRawAttackers()
		defer atk.end()
		for range 100 {
			c := atk.dial(t, f.addr, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nx", nil)
			atk.wg.Add(1)
			go func() {
				defer atk.wg.Done()
				tick := time.NewTicker(fairTrickleGap)
				defer tick.Stop()
				for {
					select {
					case <-atk.stop:
						return
					case <-tick.C:
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
		}
		landed := waitSoft(fairUploadWait, func() bool { return be.upload.Load() >= 100 })
		t.Logf("uploads reaching the backend: %d (all: %v), stats %+v", be.upload.Load(), landed, f.p.Stats())
		probeDuringAttack(t, f, "100 slow uploads")
		atk.end()
		expectStreamsReleased(t, f, "slow uploads")
	})

	// (b) Slow readers: 100 HTTP/1.1 clients request 64 MB and never read.
	t.Run("slow-reader", func(t *testing.T) {
		be := newFairBackend(t, 0)
		f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, false)
		atk := newRawAttackers()
		defer atk.end()
		for range 100 {
			atk.dial(t, f.addr, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", func(c net.Conn) {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetReadBuffer(4 << 10) // keep what the kernel absorbs small
				}
			})
		}
		landed := waitSoft(fairSetupWait, func() bool { return be.big.Load() >= 100 })
		t.Logf("/big requests reaching the backend: %d (all: %v), stats %+v", be.big.Load(), landed, f.p.Stats())
		probeDuringAttack(t, f, "100 non-reading 64 MB downloads")
		atk.end()
		expectStreamsReleased(t, f, "non-reading downloads")
	})

	// (c) One HTTP/2 connection opening 400 streams to a slow endpoint.
	t.Run("h2-many-streams", func(t *testing.T) {
		be := newFairBackend(t, 0)
		f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, false)
		a := dialH2Attacker(t, f.addr, fairConnLife)
		defer a.close()
		sent := 0
		for i := range 400 {
			if a.request(uint32(2*i+1), "/slow") != nil {
				break
			}
			sent++
		}
		landed := waitSoft(fairSetupWait, func() bool { return be.slow.Load() >= 100 })
		t.Logf("sent %d streams; /slow requests reaching the backend: %d (>=100: %v), stats %+v", sent, be.slow.Load(), landed, f.p.Stats())
		probeDuringAttack(t, f, "one HTTP/2 connection with 400 slow streams")
		a.close()
		expectStreamsReleased(t, f, "400-stream connection")
	})

	// (d) Ten HTTP/2 connections with SETTINGS_INITIAL_WINDOW_SIZE 0, each opening
	// many streams to /big: the proxy can send them nothing.
	t.Run("h2-zero-window", func(t *testing.T) {
		be := newFairBackend(t, 0)
		f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, false)
		var atks []*h2Attacker
		defer func() {
			for _, a := range atks {
				a.close()
			}
		}()
		sent := 0
		for range 10 {
			a := dialH2Attacker(t, f.addr, fairConnLife, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			atks = append(atks, a)
			for i := range 40 {
				if a.request(uint32(2*i+1), "/big") != nil {
					break
				}
				sent++
			}
		}
		landed := waitSoft(fairSetupWait, func() bool { return be.big.Load() >= 100 })
		t.Logf("sent %d streams; /big requests reaching the backend: %d (>=100: %v), stats %+v", sent, be.big.Load(), landed, f.p.Stats())
		probeDuringAttack(t, f, "ten zero-window HTTP/2 connections")
		for _, a := range atks {
			a.close()
		}
		atks = nil
		expectStreamsReleased(t, f, "zero-window connections")
	})

	// (e) 500 concurrent legitimate long polls on defaults all succeed, and none
	// waits for another to finish: the backend holds each until all 500 are in flight
	// at once (at most 3 s). A long poll that has to queue behind others gets 503 once
	// their hold exceeds QueueTimeout (the 120 polls → 20 × 503).
	t.Run("500-long-polls", func(t *testing.T) {
		const n = 500
		be := newFairBackend(t, n)
		f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, false)
		tr := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: n, DisableCompression: true}
		tr.Protocols.SetHTTP1(true)
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		var wg sync.WaitGroup
		var ok atomic.Int64
		codes := sync.Map{} // status → count
		start := time.Now()
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(f.url + "/poll")
				if err != nil {
					codes.Store(err.Error(), 1)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && string(b) == "polled" {
					ok.Add(1)
					return
				}
				v, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}()
		}
		wg.Wait()
		took := time.Since(start)
		if got := ok.Load(); got != n {
			var failed []string
			codes.Range(func(k, v any) bool {
				if c, isCount := v.(*atomic.Int64); isCount {
					failed = append(failed, fmt.Sprintf("%v×%d", k, c.Load()))
				} else {
					failed = append(failed, fmt.Sprint(k))
				}
				return true
			})
			t.Errorf("%d of %d long polls succeeded; failures: %v (stats %+v)", got, n, failed, f.p.Stats())
		}
		if p := be.pollPeak.Load(); p != n {
			t.Errorf("at most %d of %d long polls reached the backend at once (took %v): the rest queued behind them (stats %+v)",
				p, n, took.Round(time.Millisecond), f.p.Stats())
		}
		t.Logf("%d long polls in %v, backend peak %d, stats %+v", n, took.Round(time.Millisecond), be.pollPeak.Load(), f.p.Stats())
	})
}

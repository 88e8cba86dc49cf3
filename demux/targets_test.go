package demux

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// namedBackend is a backend whose answers name it, counting what it served.
type namedBackend struct {
	*backend
	name   string
	served atomic.Int64
}

func newNamedBackend(t *testing.T, addr, name string, hold time.Duration) *namedBackend {
	t.Helper()
	nb := &namedBackend{name: name}
	nb.backend = newBackendOn(t, addr, 0, false, func(w http.ResponseWriter, r *http.Request) {
		nb.served.Add(1)
		time.Sleep(hold) // a request takes a while, so load shows as streams in use
		io.WriteString(w, name)
	})
	return nb
}

// loadThrough sends n GETs from c concurrent clients and returns the answers by
// body and the failures.
func loadThrough(t *testing.T, f *front, c, n int) (map[string]int, []string) {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	var fails []string
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				resp, err := f.client.Get(f.url + "/")
				if err != nil {
					mu.Lock()
					fails = append(fails, err.Error())
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode != 200 {
					fails = append(fails, fmt.Sprintf("%d %s", resp.StatusCode, b))
				} else {
					got[string(b)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got, fails
}

// Requests spread over two and three targets (different loopback addresses) by
// load: every target serves a fair part.
func TestRequestsSpreadOverTargets(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(strconv.Itoa(n)+"-targets", func(t *testing.T) {
			var ups []string
			for i := range n {
				nb := newNamedBackend(t, fmt.Sprintf("127.0.0.%d:0", i+1), "b"+strconv.Itoa(i), 5*time.Millisecond)
				ups = append(ups, "h2c://"+nb.addr)
			}
			f := newFront(t, Config{Upstreams: ups})
			got, fails := loadThrough(t, f, 12, 300)
			if len(fails) > 0 {
				t.Fatalf("%d failures, first %q", len(fails), fails[0])
			}
			for i := range n {
				if share := got["b"+strconv.Itoa(i)]; share < 300/n/3 {
					t.Errorf("target %d served %d of 300 (%v)", i, share, got)
				}
			}
			if st := f.p.Stats(); len(st.Targets) != n {
				t.Errorf("Stats.Targets: %+v", st.Targets)
			}
		})
	}
}

// A target killed under load is ejected and the others take its requests: no request
// fails but those in flight on its dead connections (and idempotent ones there are
// re-sent). Brought back, it takes load again once its ejection ends.
func TestKilledTargetEjectedAndBack(t *testing.T) {
	a := newNamedBackend(t, "127.0.0.1:0", "a", 2*time.Millisecond)
	b := newNamedBackend(t, "127.0.0.2:0", "b", 2*time.Millisecond)
	f := newFront(t, Config{Upstreams: []string{"h2c://" + a.addr, "h2c://" + b.addr}})
	if got, fails := loadThrough(t, f, 8, 200); len(fails) > 0 || got["b"] == 0 {
		t.Fatalf("before: %v, failures %q", got, fails)
	}

	b.srv.Close() // listener and connections: the upstream is gone
	const clients = 8
	got, fails := loadThrough(t, f, clients, 400)
	if len(fails) > clients {
		t.Errorf("%d requests failed after the kill (at most the %d in flight may): %q", len(fails), clients, fails)
	}
	if got["a"] < 400-clients {
		t.Errorf("a served %d of 400 while b was down", got["a"])
	}
	var bStats TargetStats
	for _, ts := range f.p.Stats().Targets {
		if ts.Addr == b.addr {
			bStats = ts
		}
	}
	if bStats.Ejections == 0 {
		t.Errorf("b not ejected: %+v", bStats)
	}
	if _, fails := loadThrough(t, f, clients, 200); len(fails) > 0 {
		t.Errorf("%d requests failed once b was ejected: %q", len(fails), fails)
	}

	back := newNamedBackend(t, b.addr, "b", 2*time.Millisecond)
	waitFor(t, 40*time.Second, "b taking load again (after its ejection backoff, at most 30 s)", func() bool {
		loadThrough(t, f, 4, 40)
		return back.served.Load() > 0
	})
}

// When every target is down, a request fails at once with 502, not after
// QueueTimeout.
func TestAllTargetsDown502(t *testing.T) {
	var ups []string
	for i := range 2 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+1))
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, "h2c://"+l.Addr().String())
		l.Close()
	}
	f := newFront(t, Config{Upstreams: ups, QueueTimeout: time.Minute})
	for i := range 6 { // the first ones find targets to try; then both are ejected
		resp, err := f.client.Get(f.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("request %d: status %d, want 502", i, resp.StatusCode)
		}
	}
	ejected := 0
	for _, ts := range f.p.Stats().Targets {
		if ts.Ejected {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("%d of 2 targets ejected: %+v", ejected, f.p.Stats().Targets)
	}
}

// testResolver answers LookupHost from a list the test changes.
type testResolver struct {
	mu    sync.Mutex
	addrs []string
}

func (r *testResolver) set(addrs ...string) {
	r.mu.Lock()
	r.addrs = addrs
	r.mu.Unlock()
}

func (r *testResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != "svc.test" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]string(nil), r.addrs...), nil
}

// A host name is looked up again every ResolveInterval: a new address becomes a
// target, one that vanished takes no new requests and leaves once idle.
func TestTargetsFollowDNS(t *testing.T) {
	one := newNamedBackend(t, "127.0.0.1:0", "one", 0)
	_, port, _ := net.SplitHostPort(one.addr)
	two := newNamedBackend(t, "127.0.0.2:"+port, "two", 0)
	res := &testResolver{}
	res.set("127.0.0.1")
	f := newFront(t, Config{Upstream: "h2c://svc.test:" + port, Resolver: res, ResolveInterval: 20 * time.Millisecond})
	if got, fails := loadThrough(t, f, 4, 40); got["one"] != 40 {
		t.Fatalf("before the change: %v %q", got, fails)
	}
	res.set("127.0.0.2")
	waitFor(t, 10*time.Second, "requests following the new address", func() bool {
		got, _ := loadThrough(t, f, 2, 10)
		return got["two"] == 10
	})
	waitFor(t, 10*time.Second, "the old target leaving", func() bool {
		ts := f.p.Stats().Targets
		return len(ts) == 1 && ts[0].Addr == two.addr
	})
}

// Rewrite and ModifyResponse run after the proxy's own changes, and an upstream
// URL's path is a prefix of every request's path.
func TestRewriteHooksAndPathPrefix(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.URL.Path+" "+r.Header.Get("X-Tenant")+" "+r.Header.Get("Via"))
	})
	f := newFront(t, Config{
		Upstream: "h2c://" + be.addr + "/v1",
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Host = "internal.test"
			pr.Out.Header.Set("X-Tenant", "t1")
			pr.Out.URL.Host = "elsewhere.test" // restored: the proxy chooses the target
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("X-Seen", resp.Header.Get("Via"))
			return nil
		},
	})
	resp, err := f.client.Get(f.url + "/users")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "internal.test /v1/users t1 1.1 muxpool"; resp.StatusCode != 200 || string(b) != want {
		t.Errorf("got %d %q, want %q", resp.StatusCode, b, want)
	}
	if got := resp.Header.Get("X-Seen"); got != "2 muxpool" {
		t.Errorf("ModifyResponse saw Via %q, want the proxy's", got)
	}
}

// HealthCheckPath (HTTP/1.1 targets): a target whose check fails three times in a row
// is ejected and takes no requests; once its check passes again it is back at once.
func TestHealthCheckPathEjectsAndRestores(t *testing.T) {
	var sick atomic.Bool
	mk := func(name string, addr string, checked bool) *backend {
		return newBackendOn(t, addr, 0, true, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				if checked && sick.Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return
			}
			io.WriteString(w, name)
		})
	}
	a := mk("a", "127.0.0.1:0", false)
	b := mk("b", "127.0.0.2:0", true)
	f := newFront(t, Config{Upstreams: []string{"http://" + a.addr, "http://" + b.addr},
		HealthCheckPath: "/health", PingInterval: 20 * time.Millisecond, PingTimeout: time.Second})
	ejected := func() bool {
		for _, ts := range f.p.Stats().Targets {
			if ts.Addr == b.addr {
				return ts.Ejected
			}
		}
		return false
	}
	sick.Store(true)
	waitFor(t, 10*time.Second, "b ejected by its health check", ejected)
	if got, fails := loadThrough(t, f, 4, 40); got["a"] != 40 || len(fails) > 0 {
		t.Errorf("while b is ejected: %v %q", got, fails)
	}
	sick.Store(false)
	waitFor(t, 10*time.Second, "b back after a passing check", func() bool { return !ejected() })
	waitFor(t, 10*time.Second, "b taking requests", func() bool {
		got, _ := loadThrough(t, f, 4, 40)
		return got["b"] > 0
	})
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/muxpool/muxpool/demux"
	"github.com/muxpool/muxpool/internal/netem"
)

// BenchmarkDemuxOverhead measures what the demux proxy costs per request on loopback:
// HTTP/1.1 clients going direct to the backend (path=direct-h1), the same load sent
// directly over one h2c ClientConn (path=direct-h2c, the HTTP/2 client's own cost),
// and the HTTP/1.1 clients going through the proxy, which forwards over one h2c
// connection (path=demux-h2c). size is the response body; clients the concurrent HTTP/1.1
// clients, each with its own keep-alive connection. The proxy is served the
// recommended way, with NewServer. One op is one request.
func BenchmarkDemuxOverhead(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, clients := range []int{1, 16, 128} {
			for _, path := range []string{"direct-h1", "direct-h2c", "demux-h2c"} {
				b.Run(fmt.Sprintf("size=%dKiB/clients=%d/path=%s", size>>10, clients, path), func(b *testing.B) {
					benchDemux(b, size, clients, path, 0)
				})
			}
		}
	}
}

// BenchmarkDemuxUpstream compares the proxy's two upstream strategies with a round
// trip added between proxy and backend by a netem relay: one multiplexed h2c
// connection (upstream=h2c-x1) against six HTTP/1.1 connections (upstream=h1-x6),
// 60 concurrent clients, 1 KiB responses. req/s is the throughput and conns the
// upstream TCP connections the relay accepted.
func BenchmarkDemuxUpstream(b *testing.B) {
	for _, rtt := range []time.Duration{0, 10 * time.Millisecond} {
		for _, up := range []string{"h1-x6", "h2c-x1"} {
			b.Run(fmt.Sprintf("rtt=%dms/upstream=%s", rtt.Milliseconds(), up), func(b *testing.B) {
				benchDemux(b, 1<<10, 60, "demux-"+up, rtt)
			})
		}
	}
}

// benchBackend is the backend handler behind every path of these benchmarks, the
// HAProxy runs included: size bytes of letters with a Content-Type. It must be the
// same behind both proxies: Go's HTTP/2 server writes the HEADERS of a response whose
// handler set a header field with a write of its own, before the DATA, and one whose
// handler set none together with its DATA, which costs the backend half its writes.
func benchBackend(size int) http.HandlerFunc {
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	}
}

func benchDemux(b *testing.B, size, clients int, path string, rtt time.Duration) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	backend := &http.Server{
		Handler:   benchBackend(size),
		Protocols: new(http.Protocols),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	backend.Protocols.SetHTTP1(true)
	backend.Protocols.SetUnencryptedHTTP2(true)
	go backend.Serve(l)
	defer backend.Close()
	backendAddr := l.Addr().String()

	var relay *netem.Relay
	if rtt > 0 {
		relay, err = netem.Listen(backendAddr, netem.Config{Delay: rtt / 2})
		if err != nil {
			b.Fatal(err)
		}
		defer relay.Close()
		backendAddr = relay.Addr().String()
	}

	target := "http://" + backendAddr + "/"
	var p *demux.Proxy
	if path == "demux-h2c" || path == "demux-h1-x6" || path == "demux-h2c-x1" || path == "demux-h2c-cores" {
		cfg := demux.Config{Upstream: "h2c://" + backendAddr, MaxConns: 1}
		if path == "demux-h2c-cores" {
			cfg.MaxConns = runtime.GOMAXPROCS(0) // load spreads over GOMAXPROCS/2 of them
		}
		if path == "demux-h1-x6" {
			cfg = demux.Config{Upstream: "http://" + backendAddr, MaxConns: 6}
		}
		p, err = demux.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := demux.NewServer(pl.Addr().String(), p)
		srv.ErrorLog = log.New(io.Discard, "", 0)
		go srv.Serve(pl)
		defer srv.Close()
		target = "http://" + pl.Addr().String() + "/"
	}

	tr := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: clients, DisableCompression: true}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	var rt http.RoundTripper = tr
	if path == "direct-h2c" {
		h2 := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true}
		h2.Protocols.SetUnencryptedHTTP2(true)
		cc, err := h2.NewClientConn(context.Background(), "http", backendAddr)
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		rt = cc
	}

	demuxDrive(b, rt, target, clients, clients, size) // warm every connection
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), demuxCPU(b)
	demuxDrive(b, rt, target, clients, b.N, size)
	elapsed, cpu := time.Since(start), demuxCPU(b)-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	// Client, proxy and backend share this process: CPU per request is the whole
	// path's cost, which on a shared 2-core box is steadier than latency.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	if p != nil {
		st := p.Stats()
		b.ReportMetric(float64(st.Dials), "conns")
		b.ReportMetric(float64(st.QueueWaitTotal.Microseconds())/float64(b.N), "queue-µs/op")
	}
}

// demuxDrive performs n GETs with the given number of workers, failing b on any error
// or short body.
func demuxDrive(b *testing.B, rt http.RoundTripper, url string, workers, n, size int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := demuxGet(rt, url, size); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

func demuxGet(rt http.RoundTripper, url string, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && (resp.StatusCode != 200 || n != int64(size)) {
		err = fmt.Errorf("status %d, %d body bytes, want 200 and %d", resp.StatusCode, n, size)
	}
	return err
}

// BenchmarkDemuxVsHAProxy compares requests/s of the demux against HAProxy doing the
// same HTTP/1.1-to-h2c translation (server ... proto h2, http-reuse always), at equal
// client load: HTTP/1.1 keep-alive clients, 1 KiB responses from the same backend
// handler (benchBackend), loopback. It is skipped
// when the haproxy binary is not installed (apt-get install haproxy). Both follow
// GOMAXPROCS (-test.cpu): HAProxy's nbthread, and demux's MaxConns (its load spreads
// over GOMAXPROCS/2 upstream connections), so the same run at -cpu 2,4,8,16 shows
// how each scales with cores.
func BenchmarkDemuxVsHAProxy(b *testing.B) {
	for _, clients := range []int{16, 128} {
		for _, proxy := range []string{"demux", "demux-1conn", "haproxy"} {
			b.Run(fmt.Sprintf("clients=%d/proxy=%s", clients, proxy), func(b *testing.B) {
				switch proxy {
				case "haproxy":
					benchHAProxy(b, 1<<10, clients)
				case "demux-1conn": // MaxConns 1: whether more connections ever cost throughput
					benchDemux(b, 1<<10, clients, "demux-h2c", 0)
				default:
					benchDemux(b, 1<<10, clients, "demux-h2c-cores", 0)
				}
			})
		}
	}
}

func benchHAProxy(b *testing.B, size, clients int) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		b.Skip("haproxy not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var accepts atomic.Int64
	backend := &http.Server{
		Handler:   benchBackend(size),
		Protocols: new(http.Protocols),
		ErrorLog:  log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepts.Add(1)
			}
		},
	}
	backend.Protocols.SetUnencryptedHTTP2(true)
	go backend.Serve(l)
	defer backend.Close()

	// A free port for HAProxy's frontend.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	front := pl.Addr().String()
	pl.Close()
	cfg := fmt.Sprintf(`global
	maxconn 4096
	nbthread %d
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend fe
	bind %s
	default_backend be
backend be
	http-reuse always
	server s1 %s proto h2
`, runtime.GOMAXPROCS(0), front, l.Addr().String())
	cfgPath := b.TempDir() + "/haproxy.cfg"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfgPath)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("haproxy did not start: %v", err)
		}
	}

	tr := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: clients, DisableCompression: true}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	target := "http://" + front + "/"
	demuxDrive(b, tr, target, clients, clients, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0, hcpu0 := time.Now(), demuxCPU(b), procCPU(b, cmd.Process.Pid)
	demuxDrive(b, tr, target, clients, b.N, size)
	elapsed := time.Since(start)
	cpu := demuxCPU(b) - cpu0 + procCPU(b, cmd.Process.Pid) - hcpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	// The same whole-path cost as demux's: this process (clients, backend) plus HAProxy.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(accepts.Load()), "conns")
}

// procCPU returns the user+system CPU time of process pid so far, from
// /proc/pid/stat (fields 14 and 15, in clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) is parenthesised and may hold spaces.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// demuxCPU returns the process's user+system CPU time so far.
func demuxCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package bench

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/hashicorp/yamux"

	"github.com/muxpool/muxpool/mux"
)

// idleSessions is how many session pairs BenchmarkMuxIdleSession holds open at once.
const idleSessions = 1000

// idleImpl starts one idle session pair (client and server ends) over conns c and s, opens
// streams on it and returns a function that closes both ends.
type idleImpl struct {
	name  string
	start func(tb testing.TB, c, s net.Conn, streams int) (stop func())
}

var idleImpls = []idleImpl{
	{"muxpool", startIdleMuxpool},
	{"yamux", startIdleYamux},
}

func startIdleMuxpool(tb testing.TB, c, s net.Conn, streams int) func() {
	cfg := mux.DefaultConfig() // keepalive on, as a long-lived tunnel would run it
	cs, err := mux.Client(c, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ss, err := mux.Server(s, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for range streams {
		st, err := cs.Open(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := st.Write([]byte{1}); err != nil {
			tb.Fatal(err)
		}
		peer, err := ss.AcceptStream(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
			tb.Fatal(err)
		}
	}
	return func() {
		cs.Close()
		ss.Close()
		cs.Wait()
		ss.Wait()
	}
}

func startIdleYamux(tb testing.TB, c, s net.Conn, streams int) func() {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cs, err := yamux.Client(c, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ss, err := yamux.Server(s, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for range streams {
		st, err := cs.OpenStream()
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := st.Write([]byte{1}); err != nil {
			tb.Fatal(err)
		}
		peer, err := ss.AcceptStream()
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
			tb.Fatal(err)
		}
	}
	return func() {
		cs.Close()
		ss.Close()
	}
}

// memInUse returns the heap and goroutine-stack bytes in use after a full collection.
func memInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// settledMemInUse is memInUse once two measurements in a row agree within 1 % (20 tries at
// most): sessions just started finish their start-up exchanges first (muxpool's three RTT
// probes each way), and a session caught writing one holds a write buffer that an idle
// session does not.
func settledMemInUse() (heap, stack uint64) {
	heap, stack = memInUse()
	for range 20 {
		h, s := memInUse()
		settled := max(h, heap)-min(h, heap) <= heap/100
		heap, stack = h, s
		if settled {
			break
		}
	}
	return heap, stack
}

// BenchmarkMuxIdleSession: what an idle session costs. It connects 1000 session pairs over
// loopback TCP (each stream carried one byte each way at the start, then nothing) and
// reports the heap and stack in use per session (each end of a pair counts as one session),
// beyond what the TCP connections alone hold: bytes/session (heap and stacks), heap-B/session
// and stack-B/session. The figures come from one measurement per run; ns/op is not meaningful.
func BenchmarkMuxIdleSession(b *testing.B) {
	for _, streams := range []int{0, 10} {
		for _, impl := range idleImpls {
			b.Run("streams="+itoa(streams)+"/impl="+impl.name, func(b *testing.B) {
				conns := make([][2]net.Conn, idleSessions)
				for i := range conns {
					c, s := tcpConnPair(b)
					conns[i] = [2]net.Conn{c, s}
				}
				heap0, stack0 := memInUse()
				stops := make([]func(), idleSessions)
				for i, cs := range conns {
					stops[i] = impl.start(b, cs[0], cs[1], streams)
				}
				heap1, stack1 := settledMemInUse()
				for b.Loop() {
				}
				for _, stop := range stops {
					stop()
				}
				n := float64(2 * idleSessions)
				heap := float64(int64(heap1)-int64(heap0)) / n
				stack := float64(int64(stack1)-int64(stack0)) / n
				b.ReportMetric(heap+stack, "bytes/session")
				b.ReportMetric(heap, "heap-B/session")
				b.ReportMetric(stack, "stack-B/session")
			})
		}
	}
}

// tcpConnPair returns both ends of a loopback TCP connection.
func tcpConnPair(tb testing.TB) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- s
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	s := <-ch
	if s == nil {
		tb.Fatal("accept failed")
	}
	return c, s
}

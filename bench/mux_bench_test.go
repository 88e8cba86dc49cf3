package bench

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/xtaci/smux"

	"github.com/muxpool/muxpool/mux"
)

// muxImpl opens streams to an echo/sink server over loopback TCP, one implementation each:
// raw TCP (a connection per stream), our mux, hashicorp/yamux and xtaci/smux (one connection
// carrying every stream).
type muxImpl struct {
	name string
	// start returns a function that opens a stream (net.Conn) to a server running serve on
	// each accepted stream, and a function that tears everything down.
	start func(tb testing.TB, serve func(net.Conn)) (open func() (net.Conn, error), stop func())
}

var muxImpls = []muxImpl{
	{"tcp", startTCP},
	{"muxpool", startMuxpool},
	{"yamux", startYamux},
	{"smux", startSmux},
}

// loopbackListener listens on 127.0.0.1 and runs serve on each accepted connection.
func loopbackListener(tb testing.TB, serve func(net.Conn)) (net.Listener, *sync.WaitGroup) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
			}()
		}
	}()
	return ln, &wg
}

func startTCP(tb testing.TB, serve func(net.Conn)) (func() (net.Conn, error), func()) {
	ln, wg := loopbackListener(tb, serve)
	open := func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }
	return open, func() { ln.Close(); wg.Wait() }
}

// startSession dials one TCP connection and wraps both ends with client/server constructors,
// serving every accepted stream.
func startSession(tb testing.TB, serve func(net.Conn),
	server func(net.Conn) (accept func() (net.Conn, error), closer io.Closer),
	client func(net.Conn) (open func() (net.Conn, error), closer io.Closer),
) (func() (net.Conn, error), func()) {
	var wg sync.WaitGroup
	var srvClose io.Closer
	ready := make(chan struct{})
	ln, lwg := loopbackListener(tb, func(c net.Conn) {
		accept, closer := server(c)
		srvClose = closer
		close(ready)
		for {
			st, err := accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(st)
			}()
		}
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	open, cliClose := client(conn)
	<-ready
	return open, func() {
		cliClose.Close()
		srvClose.Close()
		ln.Close()
		lwg.Wait()
		wg.Wait()
	}
}

func startMuxpool(tb testing.TB, serve func(net.Conn)) (func() (net.Conn, error), func()) {
	cfg := mux.DefaultConfig()
	cfg.EnableKeepAlive = false
	var sessions []*mux.Session
	var mu sync.Mutex
	keep := func(s *mux.Session) {
		mu.Lock()
		sessions = append(sessions, s)
		mu.Unlock()
	}
	open, stop := startSession(tb, serve,
		func(c net.Conn) (func() (net.Conn, error), io.Closer) {
			s, _ := mux.Server(c, cfg)
			keep(s)
			return s.Accept, s
		},
		func(c net.Conn) (func() (net.Conn, error), io.Closer) {
			s, _ := mux.Client(c, cfg)
			keep(s)
			return func() (net.Conn, error) { return s.Open(context.Background()) }, s
		})
	return open, func() {
		stop()
		for _, s := range sessions {
			s.Wait()
		}
	}
}

func startYamux(tb testing.TB, serve func(net.Conn)) (func() (net.Conn, error), func()) {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.LogOutput = io.Discard
	return startSession(tb, serve,
		func(c net.Conn) (func() (net.Conn, error), io.Closer) {
			s, _ := yamux.Server(c, cfg)
			return s.Accept, s
		},
		func(c net.Conn) (func() (net.Conn, error), io.Closer) {
			s, _ := yamux.Client(c, cfg)
			return s.Open, s
		})
}

func startSmux(tb testing.TB, serve func(net.Conn)) (func() (net.Conn, error), func()) {
	cfg := smux.DefaultConfig()
	cfg.KeepAliveDisabled = true
	return startSession(tb, serve,
		func(c net.Conn) (func() (net.Conn, error), io.Closer) {
			s, _ := smux.Server(c, cfg)
			return func() (net.Conn, error) { return s.AcceptStream() }, s
		},
		func(c net.Conn) (func() (net.Conn, error), io.Closer) {
			s, _ := smux.Client(c, cfg)
			return func() (net.Conn, error) { return s.OpenStream() }, s
		})
}

// sink reads a stream to EOF, then closes it.
func sink(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	c.Close()
}

// echo copies a stream back to itself until EOF, then closes it.
func echo(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
}

// BenchmarkMuxBulk: one or 32 streams each writing 64 KiB per op to a sink. MB/s is the
// aggregate; tcp uses one connection per stream.
func BenchmarkMuxBulk(b *testing.B) {
	for _, streams := range []int{1, 32} {
		for _, impl := range muxImpls {
			b.Run("streams="+itoa(streams)+"/impl="+impl.name, func(b *testing.B) {
				open, stop := impl.start(b, sink)
				defer stop()
				conns := make([]net.Conn, streams)
				for i := range conns {
					c, err := open()
					if err != nil {
						b.Fatal(err)
					}
					conns[i] = c
				}
				buf := make([]byte, 64<<10)
				b.SetBytes(int64(len(buf)))
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				per := b.N / streams
				for i, c := range conns {
					n := per
					if i == 0 {
						n += b.N % streams
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range n {
							if _, err := c.Write(buf); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				for _, c := range conns {
					c.Close()
				}
			})
		}
	}
}

// deadlineSink reads a stream to EOF with a read deadline set before every Read, as
// net/http's server does on the conns it serves, then closes it.
func deadlineSink(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	c.Close()
}

// BenchmarkMuxBulkDeadlines: one stream writing 64 KiB per op to a sink, with a write
// deadline set before every Write and a read deadline before every Read (deadlineSink), as
// net/http sets them; MB/s. tcp is one plain connection doing the same.
func BenchmarkMuxBulkDeadlines(b *testing.B) {
	for _, impl := range muxImpls {
		b.Run("streams=1/impl="+impl.name, func(b *testing.B) {
			open, stop := impl.start(b, deadlineSink)
			defer stop()
			c, err := open()
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c.Close()
		})
	}
}

// BenchmarkMuxEcho: a 64-byte round trip on an already open stream; ns/op is the latency.
func BenchmarkMuxEcho(b *testing.B) {
	for _, impl := range muxImpls {
		b.Run("size=64/impl="+impl.name, func(b *testing.B) {
			open, stop := impl.start(b, echo)
			defer stop()
			c, err := open()
			if err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 64)
			in := make([]byte, 64)
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c.Close()
		})
	}
}

// BenchmarkMuxOpenEchoClose: per op, open a stream (tcp: dial a connection), send 64 bytes,
// half-close, read the echo to EOF, close.
func BenchmarkMuxOpenEchoClose(b *testing.B) {
	for _, impl := range muxImpls {
		b.Run("size=64/impl="+impl.name, func(b *testing.B) {
			open, stop := impl.start(b, echo)
			defer stop()
			msg := make([]byte, 64)
			in := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c, err := open()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			b.StopTimer()
			// let the server side finish closing before stop waits for it
			time.Sleep(10 * time.Millisecond)
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

// BenchmarkMuxEchoUnderBulk: a 64-byte round trip on one stream while another stream of the
// same session pushes bulk data as fast as it can; ns/op is the small stream's latency under
// load (fair scheduling), and the bulk stream's throughput is reported as bulk-MB/s. tcp runs
// the two on separate connections, so it shows the floor.
func BenchmarkMuxEchoUnderBulk(b *testing.B) {
	for _, impl := range muxImpls {
		b.Run("size=64/impl="+impl.name, func(b *testing.B) {
			open, stop := impl.start(b, func(c net.Conn) {
				var first [1]byte
				if _, err := io.ReadFull(c, first[:]); err != nil {
					c.Close()
					return
				}
				if first[0] == 'B' {
					sink(c)
					return
				}
				c.Write(first[:])
				echo(c)
			})
			defer stop()
			bulk, err := open()
			if err != nil {
				b.Fatal(err)
			}
			small, err := open()
			if err != nil {
				b.Fatal(err)
			}
			bulk.Write([]byte{'B'})
			small.Write([]byte{'S'})
			io.ReadFull(small, make([]byte, 1))

			stopBulk := make(chan struct{})
			bulkBytes := make(chan int64, 1)
			go func() {
				buf := make([]byte, 64<<10)
				var n int64
				for {
					select {
					case <-stopBulk:
						bulkBytes <- n
						return
					default:
					}
					k, err := bulk.Write(buf)
					n += int64(k)
					if err != nil {
						bulkBytes <- n
						return
					}
				}
			}()
			msg, in := make([]byte, 64), make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := small.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(small, in); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			elapsed := time.Since(start)
			close(stopBulk)
			n := <-bulkBytes
			b.ReportMetric(float64(n)/elapsed.Seconds()/1e6, "bulk-MB/s")
			small.Close()
			bulk.Close()
		})
	}
}

// BenchmarkMuxBulkCeiling: one loopback TCP connection carrying 1 MiB writes to a reader with
// a 1 MiB buffer, no framing at all, one writer goroutine and one reader: what one connection
// moves without a multiplexer, the reference for BenchmarkMuxBulk/streams=32 of muxpool, yamux
// and smux. It is not an upper bound: its writer and reader wake each other across CPUs, and
// a multiplexer that keeps more goroutines busy can pass it (bench/README.md).
func BenchmarkMuxBulkCeiling(b *testing.B) {
	const size = 1 << 20
	ln, wg := loopbackListener(b, func(c net.Conn) {
		buf := make([]byte, size)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
	})
	defer func() { ln.Close(); wg.Wait() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, size)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

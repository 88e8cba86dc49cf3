package netem

import (
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkRelay measures one connection's one-way throughput through the
// relay to a sink, against a direct connection (path=direct), so the relay's
// own cost is visible. One op writes 64 KiB; the timer stops after the sink
// has read everything.
func BenchmarkRelay(b *testing.B) {
	for _, tc := range []struct {
		name  string
		relay bool
		delay time.Duration
	}{{"path=direct", false, 0}, {"path=relay/delay=0ms", true, 0}, {"path=relay/delay=5ms", true, 5 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			served := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					served <- 0
					return
				}
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				served <- n
			}()
			addr := ln.Addr().String()
			if tc.relay {
				r, err := Listen(addr, Config{Delay: tc.delay})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				addr = r.Addr().String()
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			if n := <-served; n != int64(b.N*len(buf)) {
				b.Fatalf("sink got %d bytes, want %d", n, b.N*len(buf))
			}
			b.StopTimer()
			c.Close()
		})
	}
}

package mux

import (
	"io"
	"testing"
	"time"
)

// BenchmarkFastPaths measures what the fast paths (direct reads by Stream.Read, inline writes
// by Stream.Write) buy against the plain two-loop model of hashicorp/yamux and smux, in which
// the receive loop does all reading and the send loop all writing: the same sessions over
// loopback TCP, with the fast paths turned off on both ends for paths=loops. echo is a 64-byte
// round trip on an open stream (ns/op is the latency); bulk is one stream writing 64 KiB per
// op to a reader (MB/s).
func BenchmarkFastPaths(b *testing.B) {
	for _, fast := range []bool{true, false} {
		paths := "paths=loops"
		if fast {
			paths = "paths=fast"
		}
		b.Run("echo/"+paths, func(b *testing.B) {
			a, sa := fastPathPair(b, fast)
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(sa, buf); err != nil {
						return
					}
					if _, err := sa.Write(buf); err != nil {
						return
					}
				}
			}()
			msg, in := make([]byte, 64), make([]byte, 64)
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := a.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(a, in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("bulk/"+paths, func(b *testing.B) {
			a, sa := fastPathPair(b, fast)
			go io.Copy(io.Discard, sa)
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := a.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fastPathPair opens a stream between two sessions over loopback TCP and returns both ends,
// with the fast paths on or off on both sessions. The sessions end with the benchmark.
func fastPathPair(b *testing.B, fast bool) (*Stream, *Stream) {
	cfg := testConfig()
	cfg.EnableKeepAlive = false
	client, server := sessionPair(b, cfg, cfg)
	if !fast {
		for _, s := range []*Session{client, server} {
			s.mu.Lock()
			s.rt.direct = false // Reads wait for the receive loop
			s.deadlines = false // Writes wait for the send loop
			s.mu.Unlock()
		}
	}
	ctx := testCtx(b, time.Minute)
	a, err := client.Open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	a.Write([]byte{1})
	sa, err := server.AcceptStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	io.ReadFull(sa, make([]byte, 1))
	return a, sa
}

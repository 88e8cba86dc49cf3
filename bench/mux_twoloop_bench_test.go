package bench

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// flowWindow and flowFrame are the yamux protocol's per-stream numbers that
// BenchmarkMuxBulkTwoLoop keeps: the initial receive window (256 KiB, which neither side
// grows by default) and the 64 KiB Data frame a 64 KiB Write becomes.
const (
	flowWindow = 256 << 10
	flowFrame  = 64 << 10
	flowHeader = 12
)

// BenchmarkMuxBulkTwoLoop: one stream's bulk transfer as the yamux protocol shapes it, in the
// plain two-loop model of hashicorp/yamux and smux but with no multiplexer, on one loopback
// TCP connection: each 64 KiB write is a 12-byte header and the payload in one writev; the
// reader reads the header through a 4 KiB buffer and the payload straight into its own
// 64 KiB buffer, and sends a 12-byte credit back each time it has read half of the 256 KiB
// window; a goroutine of the writer's reads the credits and hands them over on a channel,
// and the writer waits there when the window is used up. MB/s. It shows what that model
// moves on one stream on this machine, the anchor for BenchmarkMuxBulk/streams=1.
func BenchmarkMuxBulkTwoLoop(b *testing.B) {
	var wg sync.WaitGroup
	ln, lwg := loopbackListener(b, func(c net.Conn) {
		flowReader(c)
		c.Close()
	})
	defer func() { ln.Close(); lwg.Wait() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	credit := make(chan int, flowWindow/(flowWindow/2)+1)
	wg.Add(1)
	go func() { // the writer's side reads the credits
		defer wg.Done()
		defer close(credit)
		hdr := make([]byte, flowHeader)
		for {
			if _, err := io.ReadFull(c, hdr); err != nil {
				return
			}
			credit <- int(binary.BigEndian.Uint32(hdr[8:]))
		}
	}()
	hdr := make([]byte, flowHeader)
	binary.BigEndian.PutUint32(hdr[8:], flowFrame)
	payload := make([]byte, flowFrame)
	window := flowWindow
	var bufs [2][]byte
	b.SetBytes(flowFrame)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for window < flowFrame {
			window += <-credit
		}
	drain:
		for { // take credits that came in without waiting, as a receive loop would
			select {
			case n := <-credit:
				window += n
			default:
				break drain
			}
		}
		bufs = [2][]byte{hdr, payload}
		v := net.Buffers(bufs[:])
		if _, err := v.WriteTo(c); err != nil {
			b.Fatal(err)
		}
		window -= flowFrame
	}
	b.StopTimer()
	c.Close()
	wg.Wait()
}

// flowReader reads BenchmarkMuxBulkTwoLoop's frames until the connection ends, crediting
// every half window it has read.
func flowReader(c net.Conn) {
	br := bufio.NewReaderSize(c, 4096)
	buf := make([]byte, flowFrame)
	credit := make([]byte, flowHeader)
	read := 0
	for {
		hdr, err := br.Peek(flowHeader)
		if err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[8:]))
		br.Discard(flowHeader)
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return
		}
		read += n
		if read >= flowWindow/2 {
			binary.BigEndian.PutUint32(credit[8:], uint32(read))
			read = 0
			if _, err := c.Write(credit); err != nil {
				return
			}
		}
	}
}

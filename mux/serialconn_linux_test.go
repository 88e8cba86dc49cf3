package mux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// The session's TCP connection (serialConn) reads and writes as the *net.TCPConn it wraps:
// every byte in order in both directions at once, io.EOF at the end, timeouts and closes as
// the same *net.OpError, and what a timed-out vectored write left unwritten is exactly what
// the peer did not get.

func serialPair(t *testing.T) (*serialConn, *serialConn) {
	t.Helper()
	a, b := tcpPair(t)
	sa, ok1 := serialize(a).(*serialConn)
	sb, ok2 := serialize(b).(*serialConn)
	if !ok1 || !ok2 {
		t.Fatal("a *net.TCPConn was not wrapped")
	}
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

// splitBuffers cuts data into buffers of varied sizes, some empty, more than one writev takes.
func splitBuffers(data []byte) net.Buffers {
	var bufs net.Buffers
	for i, k := 0, 0; i < len(data); k++ {
		n := min(len(data)-i, []int{0, 1, 12, 700, 4096}[k%5])
		bufs = append(bufs, data[i:i+n])
		i += n
	}
	return bufs
}

func TestSerialConnBothDirectionsAtOnce(t *testing.T) {
	a, b := serialPair(t)
	const size = 4 << 20
	send := func(c *serialConn, data []byte, errc chan<- error) {
		bufs := splitBuffers(data)
		if len(bufs) <= maxIovecs {
			errc <- errors.New("too few buffers to need several writev calls")
			return
		}
		n, err := c.writeBuffers(&bufs)
		if err == nil && (n != int64(len(data)) || len(bufs) != 0) {
			err = errors.New("writeBuffers did not consume every buffer")
		}
		if err == nil {
			err = c.CloseWrite()
		}
		if err != nil {
			c.Close() // so the peer's read ends
		}
		errc <- err
	}
	da, db := randomBytes(size, 1), randomBytes(size, 2)
	errc := make(chan error, 2)
	go send(a, da, errc)
	go send(b, db, errc)
	var gotB []byte
	var errB error
	readB := make(chan struct{})
	go func() { gotB, errB = io.ReadAll(b); close(readB) }()
	gotA, errA := io.ReadAll(a) // io.ReadAll stops at io.EOF
	<-readB
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if !bytes.Equal(gotA, db) || !bytes.Equal(gotB, da) {
		t.Fatalf("bytes differ: got %d and %d of %d", len(gotA), len(gotB), size)
	}
}

func TestSerialConnTimeoutsAndClose(t *testing.T) {
	a, b := serialPair(t)

	a.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := a.Read(make([]byte, 8))
	var oe *net.OpError
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() ||
		!errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read past its deadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})

	// b does not read: a's vectored write fills the socket buffers and times out.
	a.SetWriteBuffer(16 << 10)
	b.SetReadBuffer(16 << 10)
	data := randomBytes(8<<20, 3)
	bufs := splitBuffers(data)
	a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := a.writeBuffers(&bufs)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "writev" {
		t.Fatalf("write past its deadline: %v", err)
	}
	var left int64
	for _, p := range bufs {
		left += int64(len(p))
	}
	if n <= 0 || n+left != int64(len(data)) {
		t.Fatalf("wrote %d, left %d, of %d", n, left, len(data))
	}
	a.CloseWrite()
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, data[:n]) {
		t.Fatalf("the peer got %d bytes (%v), want the %d written", len(got), err, n)
	}

	a.Close()
	for _, p := range [][]byte{make([]byte, 8), nil} {
		if _, err := a.Read(p); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read of %d bytes after Close: %v", len(p), err)
		}
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func TestSerialConnAllocatesNothing(t *testing.T) {
	a, b := serialPair(t)
	msg, in := make([]byte, 64), make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(b, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Write and Read, want 0", allocs)
	}
}

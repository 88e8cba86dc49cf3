package mux

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// rwcOnly hides everything of a connection but Read, Write and Close, as a pipe or a serial
// line would offer: no deadlines, no addresses.
type rwcOnly struct{ io.ReadWriteCloser }

// TestReadWriteCloserSession: Client and Server accept an io.ReadWriteCloser that is not a
// net.Conn. Echo and bulk data both ways work against a mux peer and a hashicorp/yamux peer
// (whose own connection is the plain TCP end), stream deadlines still end blocked calls, and
// the addresses fall back to placeholders.
func TestReadWriteCloserSession(t *testing.T) {
	t.Run("mux-peer", func(t *testing.T) {
		cc, sc := tcpPair(t)
		client, server := startPair(t, rwcOnly{cc}, rwcOnly{sc}, nil, nil)
		if client.deadlines || server.deadlines {
			t.Fatal("a session over an io.ReadWriteCloser thinks it has deadlines")
		}
		if a := client.LocalAddr(); a.Network() != "mux" {
			t.Fatalf("LocalAddr of a plain io.ReadWriteCloser: %v (%s)", a, a.Network())
		}
		go serveEcho(testCtx(t, 10*time.Second), server)
		for _, size := range []int{64, 1 << 20} {
			st, err := client.Open(testCtx(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			data := randomBytes(size, uint64(size))
			if err := echoCheck(st, st.CloseWrite, data); err != nil {
				t.Fatalf("echo of %d bytes: %v", size, err)
			}
			st.Close()
		}
	})

	t.Run("yamux-peer", func(t *testing.T) {
		cc, sc := tcpPair(t)
		ours, err := Client(rwcOnly{cc}, interopConfig())
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := yamux.Server(sc, hcConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			theirs.Close()
			ours.Close()
			ours.Wait()
		})
		go hcEcho(theirs)
		st, err := ours.Open(testCtx(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := echoCheck(st, st.CloseWrite, randomBytes(1<<20, 5)); err != nil {
			t.Fatalf("echo through hashicorp/yamux: %v", err)
		}
	})

	t.Run("deadlines", func(t *testing.T) {
		cc, sc := tcpPair(t)
		client, server := startPair(t, rwcOnly{cc}, rwcOnly{sc}, nil, nil)
		st, err := client.Open(testCtx(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		acceptOne(t, server) // never read: the window runs out
		st.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("Read past its deadline: %v, want ErrTimeout", err)
		}
		st.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := st.Write(make([]byte, 1<<20))
		if !errors.Is(err, ErrTimeout) || n < initialWindow || n >= 1<<20 {
			t.Fatalf("Write past the window and its deadline = (%d, %v), want (>= %d, ErrTimeout)", n, err, initialWindow)
		}
		if err := client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// TestReadWriteCloserWriteTimeout: over an io.ReadWriteCloser without deadlines, a connection
// write that the peer does not take within WriteTimeout still ends the session with
// ErrWriteTimeout (the connection is closed to end the write).
func TestReadWriteCloserWriteTimeout(t *testing.T) {
	ours, theirs := net.Pipe() // synchronous: a write waits for the other end to read
	defer theirs.Close()
	cfg := interopConfig()
	cfg.WriteTimeout = 200 * time.Millisecond
	s, err := Client(rwcOnly{ours}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Wait()
	defer s.Close()
	st, err := s.Open(context.Background()) // its SYN is a write nobody reads
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still up 5 s after a write the peer never took (WriteTimeout 200 ms)")
	}
	if err := s.Err(); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("session error: %v, want ErrWriteTimeout", err)
	}
	if _, err := st.Write([]byte("x")); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Write after the session ended: %v", err)
	}
}

package mux

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestOpenAcceptEcho(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)

	go serveEcho(ctx, server)

	st, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID()%2 != 1 {
		t.Fatalf("client stream ID %d is not odd", st.ID())
	}
	msg := []byte("hello, multiplexed world")
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	st.Close()
}

func TestBothDirectionsOpen(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	for _, pair := range []struct {
		name           string
		opener, accept *Session
		parity         uint32
	}{{"client-opens", client, server, 1}, {"server-opens", server, client, 0}} {
		t.Run(pair.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				st, err := pair.accept.AcceptStream(ctx)
				if err != nil {
					done <- err
					return
				}
				b, err := io.ReadAll(st)
				if err == nil && string(b) != "ping" {
					err = fmt.Errorf("got %q", b)
				}
				st.Close()
				done <- err
			}()
			st, err := pair.opener.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.ID()%2 != pair.parity {
				t.Fatalf("ID %d has wrong parity", st.ID())
			}
			st.Write([]byte("ping"))
			st.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLargeTransferChecksum moves 24 MiB each way on one stream, exceeding the initial window
// many times, and checks every byte.
func TestLargeTransferChecksum(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 30*time.Second)
	const size = 24 << 20
	data := randomBytes(size, 1)
	want := sha256.Sum256(data)

	errc := make(chan error, 1)
	go func() {
		st, err := server.AcceptStream(ctx)
		if err != nil {
			errc <- err
			return
		}
		n, sum, err := sumReader(st)
		if err == nil && (n != size || sum != want) {
			err = fmt.Errorf("server got %d bytes, checksum match %v", n, sum == want)
		}
		if err == nil {
			_, err = st.Write(data)
		}
		st.Close()
		errc <- err
	}()
	st, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(data); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	n, sum, err := sumReader(st)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || sum != want {
		t.Fatalf("client got %d bytes back, checksum match %v", n, sum == want)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// TestManyShortStreams runs many concurrent short-lived streams; each delivers every byte.
func TestManyShortStreams(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 30*time.Second)
	go func() {
		for {
			st, err := server.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				h := sha256.New()
				io.Copy(h, st)
				st.Write(h.Sum(nil))
				st.Close()
			}()
		}
	}()
	const streams, workers = 400, 32
	var wg sync.WaitGroup
	errc := make(chan error, streams)
	sem := make(chan struct{}, workers)
	for i := range streams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			data := randomBytes(1+i*523%70000, uint64(i))
			st, err := client.Open(ctx)
			if err != nil {
				errc <- err
				return
			}
			defer st.Close()
			if _, err := st.Write(data); err != nil {
				errc <- err
				return
			}
			st.CloseWrite()
			got, err := io.ReadAll(st)
			if err != nil {
				errc <- err
				return
			}
			want := sha256.Sum256(data)
			if !bytes.Equal(got, want[:]) {
				errc <- fmt.Errorf("stream %d: checksum mismatch", st.ID())
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	waitFor(t, func() bool { return client.NumStreams() == 0 && server.NumStreams() == 0 })
}

// waitFor polls cond for up to five seconds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWriteThenCloseEverything: bytes for which Write returned reach the peer even when the
// writer closes the stream and the session right away.
func TestWriteThenCloseEverything(t *testing.T) {
	for _, size := range []int{1, 100 << 10, 4 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			cc, sc := tcpPair(t)
			client, err := Client(cc, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			server, err := Server(sc, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			ctx := testCtx(t, 20*time.Second)
			data := randomBytes(size, uint64(size))
			got := make(chan []byte, 1)
			go func() {
				st, err := server.AcceptStream(ctx)
				if err != nil {
					got <- nil
					return
				}
				b, _ := io.ReadAll(st)
				got <- b
			}()
			st, err := client.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(data); err != nil {
				t.Fatal(err)
			}
			st.Close()
			client.Close()
			if b := <-got; !bytes.Equal(b, data) {
				t.Fatalf("peer got %d of %d bytes", len(b), len(data))
			}
			client.Wait()
		})
	}
}

// startupProbesDone reports whether s has sent its startup RTT probes and every ping it sent
// has been answered.
func startupProbesDone(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings.next >= startupProbes && len(s.pings.out) == 0
}

// TestKeepAlivePingsEveryInterval: with KeepAliveTimeout longer than KeepAliveInterval, an
// idle session whose peer answers still pings one interval after each answer, not once per
// timeout. Over 600 ms idle at a 50 ms interval that is about ten pongs; once per 5 s
// timeout it would be one. (Frames before the session's startup RTT probes are answered are
// left out.)
func TestKeepAlivePingsEveryInterval(t *testing.T) {
	ccfg := testConfig()
	ccfg.KeepAliveInterval = 50 * time.Millisecond
	ccfg.KeepAliveTimeout = 5 * time.Second
	client, _ := sessionPair(t, ccfg, nil)
	waitFor(t, func() bool { return startupProbesDone(client) })
	before := client.Stats().FramesReceived
	time.Sleep(600 * time.Millisecond) // idle: the behaviour under test
	if pongs := client.Stats().FramesReceived - before; pongs < 3 {
		t.Errorf("%d pongs in 600 ms idle at a 50 ms keepalive interval, want about 10", pongs)
	}
	if err := client.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestPeerCloseIsOrderly: when the peer's Close sends GoAway and hangs up, this session's
// Err says so (ErrRemoteGoAway); a connection dropped without GoAway is a lost connection
// (io.ErrUnexpectedEOF, or a reset if the dropped end had unread input). Both match
// ErrSessionClosed, neither io.EOF.
func TestPeerCloseIsOrderly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hangUp    func(server *Session, sc net.Conn)
		is, isNot error
	}{
		{"close", func(server *Session, _ net.Conn) { server.Close() }, ErrRemoteGoAway, io.ErrUnexpectedEOF},
		{"conn-drop", func(_ *Session, sc net.Conn) { sc.Close() }, ErrSessionClosed, ErrRemoteGoAway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := tcpPair(t)
			client, server := startPair(t, cc, sc, nil, nil)
			ctx := testCtx(t, 10*time.Second)
			st, sst := openedStream(t, ctx, client, server)
			defer st.Close()
			defer sst.Close()
			tc.hangUp(server, sc)
			select {
			case <-client.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("client session still running 5 s after the peer hung up")
			}
			err := client.Err()
			if !errors.Is(err, tc.is) || errors.Is(err, tc.isNot) || !errors.Is(err, ErrSessionClosed) || errors.Is(err, io.EOF) {
				t.Fatalf("Err() = %v, want %v and ErrSessionClosed, not %v or io.EOF", err, tc.is, tc.isNot)
			}
			if _, err := st.Read(make([]byte, 1)); !errors.Is(err, tc.is) {
				t.Errorf("Read after the session ended: %v, want %v", err, tc.is)
			}
		})
	}
}

// TestOpenWithDoneContext: Open with a context already done fails with its error and sends
// nothing, as net.Dialer does.
func TestOpenWithDoneContext(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st, err := client.Open(ctx); !errors.Is(err, context.Canceled) || st != nil {
		t.Fatalf("Open with a canceled ctx: %v, %v; want context.Canceled", st, err)
	}
	if n := client.Stats().StreamsOpened; n != 0 {
		t.Errorf("StreamsOpened = %d, want 0", n)
	}
	if n := server.NumStreams(); n != 0 {
		t.Errorf("server has %d streams, want 0", n)
	}
}

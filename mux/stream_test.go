package mux

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDeadlines(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	st, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = st.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline: %v, want a net.Error timeout", err)
	}
	// Clearing the deadline makes the stream usable again.
	st.SetReadDeadline(time.Time{})
	sst, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sst.Write([]byte("ok"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read after clearing the deadline: %q, %v", buf, err)
	}
	// A deadline in the past fails at once.
	st.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := st.Write([]byte("x")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Write with a past deadline: %v", err)
	}
	sst.Close()
}

func TestCloseWriteThenRead(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	st, _ := client.Open(ctx)
	st.Write([]byte("question"))
	st.CloseWrite()
	if _, err := st.Write([]byte("more")); !errors.Is(err, ErrStreamClosed) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after CloseWrite: %v", err)
	}
	sst, _ := server.AcceptStream(ctx)
	q, err := io.ReadAll(sst)
	if err != nil || string(q) != "question" {
		t.Fatalf("server read %q, %v", q, err)
	}
	sst.Write([]byte("answer"))
	sst.Close()
	a, err := io.ReadAll(st)
	if err != nil || string(a) != "answer" {
		t.Fatalf("client read %q, %v", a, err)
	}
	st.Close()
	waitFor(t, func() bool { return client.NumStreams() == 0 && server.NumStreams() == 0 })
}

// TestDataAfterCloseGetsRST: data arriving after a full Close is answered with RST, so the
// peer's writer fails promptly.
func TestDataAfterCloseGetsRST(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	st, _ := client.Open(ctx)
	st.Write([]byte("x"))
	sst, _ := server.AcceptStream(ctx)
	st.Close()
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = sst.Write(make([]byte, 1024))
	}
	if !errors.Is(err, ErrStreamReset) {
		t.Fatalf("writer to a closed stream: %v, want ErrStreamReset", err)
	}
}

func TestCloseTimeoutResets(t *testing.T) {
	cfg := testConfig()
	cfg.StreamCloseTimeout = 100 * time.Millisecond
	client, server := sessionPair(t, cfg, nil)
	ctx := testCtx(t, 10*time.Second)
	st, _ := client.Open(ctx)
	st.Write([]byte("x"))
	sst, _ := server.AcceptStream(ctx)
	st.Close() // the server never closes its side
	// Both ends forget the stream: the client after its timer, the server on the RST.
	waitFor(t, func() bool { return client.NumStreams() == 0 && server.NumStreams() == 0 })
	if _, err := io.ReadAll(sst); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("peer of a timed-out close: %v, want ErrStreamReset", err)
	}
}

func TestGoAway(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	st, _ := client.Open(ctx)
	st.Write([]byte("before"))
	sst, _ := server.AcceptStream(ctx)

	if err := server.GoAway(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Open(ctx); !errors.Is(err, ErrLocalGoAway) {
		t.Fatalf("Open after own GoAway: %v", err)
	}
	waitFor(t, func() bool {
		_, err := client.Open(ctx)
		return errors.Is(err, ErrRemoteGoAway)
	})
	// The existing stream still works both ways, and the session is up.
	sst.Write([]byte("after"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "after" {
		t.Fatalf("existing stream after GoAway: %q %v", buf, err)
	}
	if client.Err() != nil || server.Err() != nil {
		t.Fatalf("GoAway ended a session: %v / %v", client.Err(), server.Err())
	}
	st.Close()
	sst.Close()
}

func TestPing(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	for _, s := range []*Session{client, server} {
		rtt, err := s.Ping(testCtx(t, 5*time.Second))
		if err != nil || rtt <= 0 {
			t.Fatalf("Ping: %v, %v", rtt, err)
		}
	}
	if client.RTT() <= 0 {
		t.Fatal("RTT not recorded")
	}
}

// TestSessionIsListener serves HTTP/1.1 over streams with net/http, each request on its own
// stream.
func TestSessionIsListener(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.URL.Path)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(server) }()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return client.Open(ctx)
	}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for _, p := range []string{"/a", "/b"} {
		resp, err := hc.Get("http://mux" + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello "+p {
			t.Fatalf("got %q", b)
		}
	}
	tr.CloseIdleConnections()
	server.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Serve ended with %v", err)
	}
	srv.Close()
}

// TestStalledReaderStallsOnlyItsStream: one stream's reader never reads and its window fills;
// another stream still moves 8 MiB intact, and the stalled one can resume afterwards.
func TestStalledReaderStallsOnlyItsStream(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 20*time.Second)
	stalled, _ := client.Open(ctx)
	stalledSrv, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the stalled stream's window: the writer blocks once 256 KiB are buffered.
	fillDone := make(chan int, 1)
	go func() {
		n, _ := stalledSrv.Write(make([]byte, 1<<20))
		fillDone <- n
	}()
	waitFor(t, func() bool {
		stalled.s.mu.Lock()
		defer stalled.s.mu.Unlock()
		return stalled.buf.len() == initialWindow
	})

	data := randomBytes(8<<20, 3)
	go func() {
		st, err := server.Open(ctx)
		if err != nil {
			return
		}
		st.Write(data)
		st.Close()
	}()
	other, err := client.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, sum, err := sumReader(other)
	if err != nil || n != int64(len(data)) || sum != sha(data) {
		t.Fatalf("other stream: %d bytes, %v, checksum ok %v", n, err, sum == sha(data))
	}
	other.Close()

	// The stalled reader resumes and gets all of its megabyte.
	got, err := io.ReadFull(stalled, make([]byte, 1<<20))
	if err != nil || got != 1<<20 {
		t.Fatalf("stalled stream resumed with %d bytes, %v", got, err)
	}
	if n := <-fillDone; n != 1<<20 {
		t.Fatalf("stalled writer wrote %d", n)
	}
	stalled.Close()
	stalledSrv.Close()
}

// gatedConn blocks Reads until open is closed: a peer that stops reading its socket.
type gatedConn struct {
	net.Conn
	open chan struct{}
}

func (g *gatedConn) Read(p []byte) (int, error) {
	<-g.open
	return g.Conn.Read(p)
}

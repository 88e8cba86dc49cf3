package mux

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The tests in this file protect the basic promise of a session against every peer: streams
// opened by either side are accepted by the other with IDs of the right parity and carry
// bytes both ways intact, many at once, with deadlines that work as net.Conn's, and a
// session serves as a net.Listener for net/http.

// TestOpenAcceptAcrossPeers: against every peer, in both roles for the foreign ones, a stream
// opened by either side is accepted by the other, carries a checksummed echo both ways, and
// the stream IDs follow the client-odd/server-even rule; the streams are freed on both sides.
func TestOpenAcceptAcrossPeers(t *testing.T) {
	// Our mux also as the server: the parity rule both ways between two mux sessions.
	for _, k := range append([]peerKind{{"mux-server", "mux", false}}, allPeers...) {
		t.Run(k.name, func(t *testing.T) {
			ours, p := startPeer(t, k, peerOpts{})
			ctx := testCtx(t, 10*time.Second)
			go peerEcho(ctx, p)
			go serveEcho(ctx, ours)
			wantOurParity := uint32(0)
			if k.ourClient {
				wantOurParity = 1
			}
			for i := range 3 {
				st, err := ours.Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.ID()%2 != wantOurParity {
					t.Fatalf("our stream ID %d has the wrong parity", st.ID())
				}
				if err := echoCheck(st, st.CloseWrite, randomBytes(1000+i, uint64(i))); err != nil {
					t.Fatalf("ours→theirs stream %d: %v", st.ID(), err)
				}
				st.Close()

				pst, err := p.Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if streamID(pst)%2 == wantOurParity {
					t.Fatalf("their stream ID %d has the wrong parity", streamID(pst))
				}
				// hashicorp/yamux's Close is a half-close (FIN), reads go on until our FIN.
				if err := echoCheck(pst, func() error { return peerHalfClose(pst) }, randomBytes(2000+i, uint64(i+10))); err != nil {
					t.Fatalf("theirs→ours stream %d: %v", streamID(pst), err)
				}
				pst.Close()
			}
			waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
			if err := ours.Err(); err != nil {
				t.Fatalf("our session ended: %v", err)
			}
		})
	}
}

// TestManyStreamsAcrossPeers: 128 concurrent streams, half opened by each side, each echoed by
// the other side and checksummed, against every peer.
func TestManyStreamsAcrossPeers(t *testing.T) {
	forEachPeer(t, allPeers, peerOpts{}, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 30*time.Second)
		go peerEcho(ctx, p)
		go serveEcho(ctx, ours)
		const perSide = 64
		var wg sync.WaitGroup
		errc := make(chan error, 2*perSide)
		for i := range perSide {
			wg.Add(2)
			go func() {
				defer wg.Done()
				data := randomBytes(1+i*4099%(64<<10), uint64(i))
				st, err := ours.Open(ctx)
				if err != nil {
					errc <- err
					return
				}
				defer st.Close()
				if err := echoCheck(st, st.CloseWrite, data); err != nil {
					errc <- fmt.Errorf("our stream %d: %w", st.ID(), err)
				}
			}()
			go func() {
				defer wg.Done()
				data := randomBytes(1+i*7919%(64<<10), uint64(1000+i))
				st, err := p.Open(ctx)
				if err != nil {
					errc <- err
					return
				}
				defer st.Close()
				if err := echoCheck(st, func() error { return peerHalfClose(st) }, data); err != nil {
					errc <- fmt.Errorf("their stream %d: %w", streamID(st), err)
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
	})
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

// startupProbesDone reports whether s has sent its startup RTT probes and every ping it sent
// has been answered.
func startupProbesDone(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings.next >= startupProbes && len(s.pings.out) == 0
}

// TestKeepAlivePingsEveryInterval: with KeepAliveTimeout longer than KeepAliveInterval, an
// idle session whose peer answers still pings one interval after each answer, not once per
// timeout. Over 600 ms idle at a 50 ms interval that is twelve pongs (eleven if the last
// ping is still on its way when the test looks); once per 5 s timeout it would be none. It runs
// over a pipe on the fake clock of a testing/synctest bubble, where an answer takes no time.
// (Frames before the session's startup RTT probes are answered are left out.)
func TestKeepAlivePingsEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ccfg := testConfig()
		ccfg.KeepAliveInterval = 50 * time.Millisecond
		ccfg.KeepAliveTimeout = 5 * time.Second
		cc, sc := net.Pipe()
		client, _ := startPair(t, cc, sc, ccfg, nil)
		synctest.Wait()
		if !startupProbesDone(client) {
			t.Fatal("startup probes not answered once the sessions were idle")
		}
		before := client.Stats().FramesReceived
		time.Sleep(600 * time.Millisecond) // idle: the behaviour under test
		synctest.Wait()
		if pongs := client.Stats().FramesReceived - before; pongs < 11 || pongs > 12 {
			t.Errorf("%d pongs in 600 ms idle at a 50 ms keepalive interval, want 12", pongs)
		}
		if err := client.Err(); err != nil {
			t.Fatal(err)
		}
	})
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

// TestHTTPAcrossPeers: net/http runs over the sessions, so every implementation's streams work
// as net.Conn with a real user (deadlines, half-reads, Close): an http.Server uses one session
// as its net.Listener (ours, or the peer's: mux, hashicorp/yamux and go-yamux sessions are all
// net.Listeners) and an http.Transport dials streams on the other, 40 requests with
// checksummed bodies each way, then a graceful Shutdown.
func TestHTTPAcrossPeers(t *testing.T) {
	for _, k := range allPeers {
		for _, ourServer := range []bool{true, false} {
			name := k.name + "/http-server-theirs"
			if ourServer {
				name = k.name + "/http-server-ours"
			}
			t.Run(name, func(t *testing.T) {
				ours, p := startPeer(t, k, peerOpts{})
				ln := peerListener(p)
				dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return ours.Open(ctx) }
				if ourServer {
					ln = ours
					dial = func(ctx context.Context, _, _ string) (net.Conn, error) { return p.Open(ctx) }
				}
				srv := &http.Server{
					Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						n, sum, err := sumReader(r.Body)
						if err != nil {
							http.Error(w, err.Error(), 500)
							return
						}
						fmt.Fprintf(w, "%d %x", n, sum)
					}),
					ReadTimeout: 10 * time.Second,
					ErrorLog:    log.New(io.Discard, "", 0),
				}
				served := make(chan error, 1)
				go func() { served <- srv.Serve(ln) }()
				tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				var wg sync.WaitGroup
				errc := make(chan error, 40)
				for i := range 40 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						body := randomBytes(i*1500, uint64(i))
						resp, err := client.Post("http://mux/", "application/octet-stream", bytes.NewReader(body))
						if err != nil {
							errc <- err
							return
						}
						defer resp.Body.Close()
						got, err := io.ReadAll(resp.Body)
						want := fmt.Sprintf("%d %x", len(body), sha256Of(body))
						if err != nil || string(got) != want {
							errc <- fmt.Errorf("request %d: %q, %v; want %q", i, got, err, want)
						}
					}()
				}
				wg.Wait()
				close(errc)
				for err := range errc {
					t.Error(err)
				}
				tr.CloseIdleConnections()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				if err := <-served; !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("Serve returned %v", err)
				}
			})
		}
	}
}

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

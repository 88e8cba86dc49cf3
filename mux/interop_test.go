package mux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// The tests in this file run mux against the real github.com/hashicorp/yamux module ("HC")
// over loopback TCP, in both roles: our Client with their Server, and their Client with our
// Server.

// hcConfig is hashicorp/yamux's default config with logging off, keepalive off and short
// timeouts, so failures end quickly.
func hcConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	c.EnableKeepAlive = false
	c.ConnectionWriteTimeout = 5 * time.Second
	c.StreamOpenTimeout = 5 * time.Second
	c.StreamCloseTimeout = 5 * time.Second
	return c
}

// interopConfig is testConfig without logging.
func interopConfig() *Config {
	c := testConfig()
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

// interopPair is one mux session and one hashicorp/yamux session connected over loopback TCP.
type interopPair struct {
	name   string
	ours   *Session
	theirs *yamux.Session
}

// topologies are the two ways of pairing the implementations.
var topologies = []struct {
	name      string
	ourClient bool
}{
	{"ours-client", true},
	{"theirs-client", false},
}

// newInteropPair connects a mux session (client if ourClient) with a hashicorp/yamux session
// (the other role). nil configs mean interopConfig and hcConfig. Both end with the test.
func newInteropPair(t testing.TB, ourClient bool, ours *Config, theirs *yamux.Config) *interopPair {
	t.Helper()
	if ours == nil {
		ours = interopConfig()
	}
	if theirs == nil {
		theirs = hcConfig()
	}
	cc, sc := tcpPair(t)
	ourConn, theirConn := sc, cc
	if ourClient {
		ourConn, theirConn = cc, sc
	}
	var p interopPair
	var err error
	if ourClient {
		p.name = "ours-client"
		p.ours, err = Client(ourConn, ours)
		if err == nil {
			p.theirs, err = yamux.Server(theirConn, theirs)
		}
	} else {
		p.name = "theirs-client"
		p.ours, err = Server(ourConn, ours)
		if err == nil {
			p.theirs, err = yamux.Client(theirConn, theirs)
		}
	}
	if err != nil {
		cc.Close()
		sc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.theirs.Close()
		p.ours.Close()
		p.ours.Wait()
	})
	return &p
}

// theirAccept accepts one stream on their side within d.
func (p *interopPair) theirAccept(t testing.TB, d time.Duration) *yamux.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	st, err := p.theirs.AcceptStreamWithContext(ctx)
	if err != nil {
		t.Fatalf("their AcceptStream: %v", err)
	}
	return st
}

// hcEcho serves their side: every accepted stream is echoed and then closed (FIN).
func hcEcho(s *yamux.Session) {
	for {
		st, err := s.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			io.Copy(st, st)
			st.Close()
		}()
	}
}

// muxEcho serves our side: every accepted stream is echoed, then half-closed and closed.
func muxEcho(ctx context.Context, s *Session) {
	for {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			return
		}
		go func() {
			io.Copy(st, st)
			st.CloseWrite()
			st.Close()
		}()
	}
}

// echoCheck writes data on c, half-closes with closeWrite, reads the echo to EOF and compares.
func echoCheck(c net.Conn, closeWrite func() error, data []byte) error {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = closeWrite()
		}
		werr <- err
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("reading echo: %w (got %d of %d bytes)", err, len(got), len(data))
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo of %d bytes differs (got %d bytes)", len(data), len(got))
	}
	return nil
}

// TestInteropOpenAccept: in both topologies, a stream opened by either side is accepted by the
// other, carries an echo both ways, and the stream IDs follow the client-odd/server-even rule.
func TestInteropOpenAccept(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			p := newInteropPair(t, top.ourClient, nil, nil)
			ctx := testCtx(t, 10*time.Second)
			go hcEcho(p.theirs)
			go muxEcho(ctx, p.ours)
			wantOurParity := uint32(0)
			if top.ourClient {
				wantOurParity = 1
			}
			for i := range 3 {
				st, err := p.ours.Open(ctx)
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

				hst, err := p.theirs.OpenStream()
				if err != nil {
					t.Fatal(err)
				}
				if hst.StreamID()%2 == wantOurParity {
					t.Fatalf("their stream ID %d has the wrong parity", hst.StreamID())
				}
				// HC's Close is a half-close (FIN), reads go on until our FIN.
				if err := echoCheck(hst, hst.Close, randomBytes(2000+i, uint64(i+10))); err != nil {
					t.Fatalf("theirs→ours stream %d: %v", hst.StreamID(), err)
				}
			}
			waitFor(t, func() bool { return p.ours.NumStreams() == 0 && p.theirs.NumStreams() == 0 })
			if err := p.ours.Err(); err != nil {
				t.Fatalf("our session ended: %v", err)
			}
		})
	}
}

// TestInteropBulk: more than 16 MiB each way at once on one stream, checksummed, so each
// side's window is used up and refilled dozens of times: on a stream we open with HC's default
// 256 KiB window against our auto-tuned one, and on a stream HC opens with its window raised
// to 1 MiB (its SYN then carries a 768 KiB window delta and its Data frames reach 1 MiB)
// against our window fixed at 256 KiB.
func TestInteropBulk(t *testing.T) {
	const size = 17 << 20
	cases := []struct {
		name      string
		hcWindow  uint32
		ourWindow uint32
		theyOpen  bool
	}{
		{"we-open/hc256k-ours16m", 256 << 10, 0, false},
		{"they-open/hc1m-ours256k", 1 << 20, 256 << 10, true},
		{"we-open/hc1m-ours16m", 1 << 20, 0, false}, // their ACK carries the 768 KiB delta
	}
	for _, top := range topologies {
		for _, tc := range cases {
			t.Run(top.name+"/"+tc.name, func(t *testing.T) {
				hcfg := hcConfig()
				hcfg.MaxStreamWindowSize = tc.hcWindow
				ocfg := interopConfig()
				ocfg.MaxStreamWindow = tc.ourWindow
				p := newInteropPair(t, top.ourClient, ocfg, hcfg)
				ctx := testCtx(t, 30*time.Second)
				up := randomBytes(size, 1)
				down := randomBytes(size, 2)
				wantUp, wantDown := sha256Of(up), sha256Of(down)

				var ost *Stream
				var hst *yamux.Stream
				var err error
				if tc.theyOpen {
					if hst, err = p.theirs.OpenStream(); err != nil {
						t.Fatal(err)
					}
					if ost, err = p.ours.AcceptStream(ctx); err != nil {
						t.Fatal(err)
					}
				} else {
					if ost, err = p.ours.Open(ctx); err != nil {
						t.Fatal(err)
					}
					hst = p.theirAccept(t, 10*time.Second)
				}
				// Their side: read everything we send while sending everything back.
				theirErr := make(chan error, 1)
				go func() {
					hst.SetDeadline(time.Now().Add(30 * time.Second))
					werr := make(chan error, 1)
					go func() {
						_, err := hst.Write(down)
						if err == nil {
							err = hst.Close() // FIN
						}
						werr <- err
					}()
					n, sum, err := sumReader(hst)
					if err == nil && (n != size || sum != wantUp) {
						err = fmt.Errorf("they received %d bytes, checksum match %v", n, sum == wantUp)
					}
					if e := <-werr; err == nil && e != nil {
						err = fmt.Errorf("their write: %w", e)
					}
					theirErr <- err
				}()
				ost.SetDeadline(time.Now().Add(30 * time.Second))
				ourWrite := make(chan error, 1)
				go func() {
					_, err := ost.Write(up)
					if err == nil {
						err = ost.CloseWrite()
					}
					ourWrite <- err
				}()
				n, sum, err := sumReader(ost)
				if err != nil {
					t.Fatalf("our read: %v after %d bytes", err, n)
				}
				if n != size || sum != wantDown {
					t.Fatalf("we received %d bytes, checksum match %v", n, sum == wantDown)
				}
				if err := <-ourWrite; err != nil {
					t.Fatalf("our write: %v", err)
				}
				if err := <-theirErr; err != nil {
					t.Fatal(err)
				}
				ost.Close()
				waitFor(t, func() bool { return p.ours.NumStreams() == 0 && p.theirs.NumStreams() == 0 })
				st := p.ours.Stats()
				if st.BytesSent < size || st.BytesReceived < size {
					t.Errorf("stats: sent %d received %d, want both >= %d", st.BytesSent, st.BytesReceived, size)
				}
			})
		}
	}
}

func sha256Of(b []byte) [32]byte {
	_, sum, _ := sumReader(bytes.NewReader(b))
	return sum
}

// TestInteropHalfClose: a FIN ends only one direction, both ways. Our CloseWrite makes their
// Read return EOF while they keep writing and we keep reading; their Close (a half-close in
// HC) makes our Read return EOF while we keep writing and they keep reading.
func TestInteropHalfClose(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			p := newInteropPair(t, top.ourClient, nil, nil)
			ctx := testCtx(t, 10*time.Second)
			reply := randomBytes(1<<20, 7)

			// Our CloseWrite → their EOF; they answer afterwards.
			ost, err := p.ours.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ost.Write([]byte("request")); err != nil {
				t.Fatal(err)
			}
			if err := ost.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			hst := p.theirAccept(t, 5*time.Second)
			hst.SetDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(hst)
			if err != nil || string(got) != "request" {
				t.Fatalf("their read %q, %v; want request then EOF", got, err)
			}
			go func() {
				hst.Write(reply)
				hst.Close()
			}()
			ost.SetReadDeadline(time.Now().Add(10 * time.Second))
			back, err := io.ReadAll(ost)
			if err != nil || !bytes.Equal(back, reply) {
				t.Fatalf("our read after CloseWrite: %d bytes, %v", len(back), err)
			}
			if _, err := ost.Write([]byte("x")); !errors.Is(err, ErrStreamClosed) {
				t.Fatalf("Write after CloseWrite: %v, want ErrStreamClosed", err)
			}
			ost.Close()

			// Their Close (FIN) → our EOF; we answer afterwards.
			hst2, err := p.theirs.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			hst2.Write([]byte("their request"))
			hst2.Close()
			ost2, err := p.ours.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ost2.SetDeadline(time.Now().Add(10 * time.Second))
			got, err = io.ReadAll(ost2)
			if err != nil || string(got) != "their request" {
				t.Fatalf("our read %q, %v", got, err)
			}
			go func() {
				ost2.Write(reply)
				ost2.CloseWrite()
			}()
			hst2.SetDeadline(time.Now().Add(10 * time.Second))
			back, err = io.ReadAll(hst2)
			if err != nil || !bytes.Equal(back, reply) {
				t.Fatalf("their read after their Close: %d bytes, %v", len(back), err)
			}
			waitFor(t, func() bool { return p.ours.NumStreams() == 0 && p.theirs.NumStreams() == 0 })
		})
	}
}

// TestInteropReset: our Reset reaches HC (their blocked Read and later Write fail with
// yamux.ErrConnectionReset, the stream is freed on both sides); HC's RSTs reach us: the RST HC
// sends when its StreamCloseTimeout passes without our FIN, and the RST it sends when it
// refuses a stream after its own GoAway. The sessions stay up.
func TestInteropReset(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			hcfg := hcConfig()
			hcfg.StreamCloseTimeout = 200 * time.Millisecond
			p := newInteropPair(t, top.ourClient, nil, hcfg)
			ctx := testCtx(t, 10*time.Second)

			// Ours → theirs, on a stream we opened and on one they opened.
			for _, weOpen := range []bool{true, false} {
				var ost *Stream
				var hst *yamux.Stream
				var err error
				if weOpen {
					if ost, err = p.ours.Open(ctx); err != nil {
						t.Fatal(err)
					}
					ost.Write([]byte("hi"))
					hst = p.theirAccept(t, 5*time.Second)
				} else {
					if hst, err = p.theirs.OpenStream(); err != nil {
						t.Fatal(err)
					}
					hst.Write([]byte("hi"))
					if ost, err = p.ours.AcceptStream(ctx); err != nil {
						t.Fatal(err)
					}
				}
				buf := make([]byte, 2)
				hst.SetDeadline(time.Now().Add(5 * time.Second))
				ost.SetDeadline(time.Now().Add(5 * time.Second))
				if weOpen {
					io.ReadFull(hst, buf)
				} else {
					io.ReadFull(ost, buf)
				}
				readErr := make(chan error, 1)
				go func() {
					_, err := hst.Read(buf) // blocks: nothing more is coming
					readErr <- err
				}()
				time.Sleep(20 * time.Millisecond)
				ost.Reset()
				select {
				case err := <-readErr:
					if !errors.Is(err, yamux.ErrConnectionReset) {
						t.Fatalf("their blocked Read after our Reset: %v, want ErrConnectionReset", err)
					}
				case <-time.After(3 * time.Second):
					t.Fatal("their Read still blocked after our Reset")
				}
				if _, err := hst.Write([]byte("late")); !errors.Is(err, yamux.ErrConnectionReset) {
					t.Fatalf("their Write after our Reset: %v, want ErrConnectionReset", err)
				}
				if _, err := ost.Read(buf); !errors.Is(err, ErrStreamReset) {
					t.Fatalf("our Read after our Reset: %v", err)
				}
				waitFor(t, func() bool { return p.ours.NumStreams() == 0 && p.theirs.NumStreams() == 0 })
			}

			// Theirs → ours: HC closes (FIN), we never send FIN; after their
			// StreamCloseTimeout HC sends RST, and our Write learns it.
			resets := p.ours.Stats().ResetsReceived
			ost, err := p.ours.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ost.Write([]byte("hi"))
			hst := p.theirAccept(t, 5*time.Second)
			hst.Close()
			ost.SetDeadline(time.Now().Add(5 * time.Second))
			// They sent nothing but FIN: we read EOF.
			if b, err := io.ReadAll(ost); err != nil || len(b) != 0 {
				t.Fatalf("our read before their RST: %q, %v", b, err)
			}
			waitFor(t, func() bool { return p.ours.Stats().ResetsReceived > resets }) // their RST
			_, werr := ost.Write([]byte("still writing"))
			var se *StreamError
			if !errors.As(werr, &se) || !se.Remote || !errors.Is(werr, ErrStreamReset) {
				t.Fatalf("our Write after their close timeout: %v, want a remote *StreamError", werr)
			}
			waitFor(t, func() bool { return p.ours.NumStreams() == 0 && p.theirs.NumStreams() == 0 })
			if p.ours.Err() != nil || p.theirs.IsClosed() {
				t.Fatalf("a session ended: ours %v, theirs closed %v", p.ours.Err(), p.theirs.IsClosed())
			}
		})
	}
}

// TestInteropPing: pings both ways return a round-trip time, and ours feeds Stats().RTT.
func TestInteropPing(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			p := newInteropPair(t, top.ourClient, nil, nil)
			ctx := testCtx(t, 10*time.Second)
			for range 5 {
				rtt, err := p.ours.Ping(ctx)
				if err != nil {
					t.Fatalf("our Ping: %v", err)
				}
				if rtt <= 0 || rtt > 2*time.Second {
					t.Fatalf("our Ping RTT %v", rtt)
				}
				hrtt, err := p.theirs.Ping()
				if err != nil {
					t.Fatalf("their Ping: %v", err)
				}
				if hrtt <= 0 || hrtt > 2*time.Second {
					t.Fatalf("their Ping RTT %v", hrtt)
				}
			}
			if p.ours.Stats().RTT <= 0 {
				t.Fatal("Stats().RTT not set after pings")
			}
		})
	}
}

// TestInteropGoAway: GoAway with code 0 means "no new streams", both ways; existing streams go
// on in both directions and neither session ends.
func TestInteropGoAway(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name+"/theirs", func(t *testing.T) {
			p := newInteropPair(t, top.ourClient, nil, nil)
			ctx := testCtx(t, 10*time.Second)
			ost, err := p.ours.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ost.Write([]byte("before"))
			hst := p.theirAccept(t, 5*time.Second)
			hst.Write([]byte("before"))
			if err := p.theirs.GoAway(); err != nil {
				t.Fatal(err)
			}
			// HC wrote the GoAway before GoAway returned; a ping round trip started after
			// it is answered after it, so our receive loop has seen it.
			if _, err := p.ours.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := p.ours.Open(ctx); !errors.Is(err, ErrRemoteGoAway) {
				t.Fatalf("our Open after their GoAway: %v, want ErrRemoteGoAway", err)
			}
			checkStreamBothWays(t, ost, hst)
			if p.ours.Err() != nil || p.theirs.IsClosed() {
				t.Fatalf("a session ended: ours %v, theirs closed %v", p.ours.Err(), p.theirs.IsClosed())
			}
		})
		t.Run(top.name+"/ours", func(t *testing.T) {
			p := newInteropPair(t, top.ourClient, nil, nil)
			ctx := testCtx(t, 10*time.Second)
			hst, err := p.theirs.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			hst.Write([]byte("before"))
			ost, err := p.ours.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ost.Write([]byte("before"))
			if err := p.ours.GoAway(); err != nil {
				t.Fatal(err)
			}
			if _, err := p.theirs.Ping(); err != nil { // our GoAway goes out before the pong
				t.Fatal(err)
			}
			if _, err := p.theirs.OpenStream(); !errors.Is(err, yamux.ErrRemoteGoAway) {
				t.Fatalf("their OpenStream after our GoAway: %v, want ErrRemoteGoAway", err)
			}
			if _, err := p.ours.Open(ctx); !errors.Is(err, ErrLocalGoAway) {
				t.Fatalf("our Open after our GoAway: %v, want ErrLocalGoAway", err)
			}
			// (A SYN sent despite our GoAway is answered with RST: TestHostileSYNAfterGoAway.)
			checkStreamBothWays(t, ost, hst)
			if p.ours.Err() != nil || p.theirs.IsClosed() {
				t.Fatalf("a session ended: ours %v, theirs closed %v", p.ours.Err(), p.theirs.IsClosed())
			}
		})
	}
}

// checkStreamBothWays reads the "before" each side wrote, moves a message each way on an existing stream pair, then closes it.
func checkStreamBothWays(t *testing.T, ost *Stream, hst *yamux.Stream) {
	t.Helper()
	ost.SetDeadline(time.Now().Add(5 * time.Second))
	hst.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 6)
	for _, c := range []net.Conn{ost, hst} {
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "before" {
			t.Fatalf("read %q, %v", buf, err)
		}
	}
	big := randomBytes(600<<10, 3) // more than a window: needs window updates after GoAway
	go func() {
		hst.Write(big)
		hst.Close()
	}()
	if got, err := io.ReadAll(ost); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("our read after GoAway: %d bytes, %v", len(got), err)
	}
	go func() {
		ost.Write(big)
		ost.CloseWrite()
	}()
	if got, err := io.ReadAll(hst); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("their read after GoAway: %d bytes, %v", len(got), err)
	}
	ost.Close()
}

// TestInteropManyStreams: 128 concurrent streams, half opened by each side, each echoed by the
// other implementation and checksummed.
func TestInteropManyStreams(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			p := newInteropPair(t, top.ourClient, nil, nil)
			ctx := testCtx(t, 30*time.Second)
			go hcEcho(p.theirs)
			go muxEcho(ctx, p.ours)
			const perSide = 64
			var wg sync.WaitGroup
			errc := make(chan error, 2*perSide)
			for i := range perSide {
				wg.Add(2)
				go func() {
					defer wg.Done()
					data := randomBytes(1+i*4099%(64<<10), uint64(i))
					st, err := p.ours.Open(ctx)
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
					st, err := p.theirs.OpenStream()
					if err != nil {
						errc <- err
						return
					}
					if err := echoCheck(st, st.Close, data); err != nil {
						errc <- fmt.Errorf("their stream %d: %w", st.StreamID(), err)
					}
				}()
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			waitFor(t, func() bool { return p.ours.NumStreams() == 0 && p.theirs.NumStreams() == 0 })
		})
	}
}

// TestInteropKeepAlive: HC's keepalive pings every 50 ms (its reply timeout 1 s) and ours
// (interval 100 ms, timeout 1 s) run during idle periods and during a bulk transfer; neither
// side ends the session.
func TestInteropKeepAlive(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			hcfg := hcConfig()
			hcfg.EnableKeepAlive = true
			hcfg.KeepAliveInterval = 50 * time.Millisecond
			hcfg.ConnectionWriteTimeout = time.Second
			ocfg := interopConfig()
			ocfg.EnableKeepAlive = true
			ocfg.KeepAliveInterval = 100 * time.Millisecond
			ocfg.KeepAliveTimeout = time.Second
			p := newInteropPair(t, top.ourClient, ocfg, hcfg)
			ctx := testCtx(t, 20*time.Second)
			go hcEcho(p.theirs)

			time.Sleep(600 * time.Millisecond) // idle: both keepalives run
			st, err := p.ours.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := echoCheck(st, st.CloseWrite, randomBytes(4<<20, 9)); err != nil {
				t.Fatal(err)
			}
			st.Close()
			time.Sleep(600 * time.Millisecond)
			if p.ours.Err() != nil || p.theirs.IsClosed() {
				t.Fatalf("keepalive ended a session: ours %v, theirs closed %v", p.ours.Err(), p.theirs.IsClosed())
			}
			if p.ours.Stats().FramesReceived < 10 {
				t.Errorf("only %d frames received; HC keepalive pings missing?", p.ours.Stats().FramesReceived)
			}
		})
	}
}

// TestInteropRefusalAndCloseRST: our RSTs in the two other situations where mux sends them
// reach HC as resets: SYNs past our AcceptBacklog (their streams fail with
// ErrConnectionReset while the ones we keep work), and data arriving after our full Close
// (their Write fails promptly instead of filling a window nobody reads).
func TestInteropRefusalAndCloseRST(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			ocfg := interopConfig()
			ocfg.AcceptBacklog = 4
			p := newInteropPair(t, top.ourClient, ocfg, nil)
			ctx := testCtx(t, 10*time.Second)

			var hsts []*yamux.Stream
			for range 10 {
				hst, err := p.theirs.OpenStream()
				if err != nil {
					t.Fatal(err)
				}
				hsts = append(hsts, hst)
			}
			waitFor(t, func() bool { return p.ours.Stats().StreamsRefused == 6 })
			for i, hst := range hsts {
				hst.SetDeadline(time.Now().Add(3 * time.Second))
				_, err := hst.Write([]byte("hello"))
				if i < 4 {
					if err != nil {
						t.Fatalf("kept stream %d: Write: %v", i, err)
					}
					continue
				}
				// The RST may land after a first Write that fitted the initial window.
				for j := 0; err == nil && j < 100; j++ {
					time.Sleep(10 * time.Millisecond)
					_, err = hst.Write([]byte("hello"))
				}
				if !errors.Is(err, yamux.ErrConnectionReset) {
					t.Fatalf("refused stream %d: Write: %v, want ErrConnectionReset", i, err)
				}
			}
			for i := range 4 {
				ost, err := p.ours.AcceptStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if ost.ID() != hsts[i].StreamID() {
					t.Fatalf("accepted stream %d, want %d", ost.ID(), hsts[i].StreamID())
				}
				ost.SetReadDeadline(time.Now().Add(3 * time.Second))
				buf := make([]byte, 5)
				if _, err := io.ReadFull(ost, buf); err != nil || string(buf) != "hello" {
					t.Fatalf("kept stream read %q, %v", buf, err)
				}
				// Our full Close: their next writes are answered with RST.
				ost.Close()
				var werr error
				for j := 0; werr == nil && j < 100; j++ {
					_, werr = hsts[i].Write([]byte("anyone there?"))
					time.Sleep(10 * time.Millisecond)
				}
				if !errors.Is(werr, yamux.ErrConnectionReset) {
					t.Fatalf("their Write after our Close: %v, want ErrConnectionReset", werr)
				}
			}
			waitFor(t, func() bool { return p.ours.NumStreams() == 0 && p.theirs.NumStreams() == 0 })
			if p.ours.Err() != nil || p.theirs.IsClosed() {
				t.Fatalf("a session ended: ours %v, theirs closed %v", p.ours.Err(), p.theirs.IsClosed())
			}
		})
	}
}

// TestInteropWriteThenClose: bytes for which our Write returned reach HC even when we close
// the stream and the whole session right after: HC reads every byte (checksummed) and then
// EOF, in both topologies, several streams at once.
func TestInteropWriteThenClose(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			p := newInteropPair(t, top.ourClient, nil, nil)
			ctx := testCtx(t, 20*time.Second)
			const streams = 4
			sizes := []int{1, 100 << 10, 1 << 20, 3 << 20}
			results := make(chan error, 2*streams)
			for range streams {
				go func() {
					actx, cancel := context.WithTimeout(ctx, 10*time.Second)
					defer cancel()
					hst, err := p.theirs.AcceptStreamWithContext(actx)
					if err != nil {
						results <- err
						return
					}
					// Accept order among these goroutines is arbitrary: the stream ID says
					// which Open (1, 3, 5, 7 or 2, 4, 6, 8) this stream is.
					i := int((hst.StreamID() - 1) / 2)
					want := sha256Of(randomBytes(sizes[i], uint64(50+i)))
					hst.SetReadDeadline(time.Now().Add(15 * time.Second))
					n, sum, err := sumReader(hst)
					if n == int64(sizes[i]) && sum == want {
						// Every byte arrived. hashicorp/yamux's Read can still fail after the
						// last bytes: it returns the error of the window update it sends, and
						// their session closes its connection once ours is closed.
						err = nil
					} else if err == nil {
						err = fmt.Errorf("HC got %d of %d bytes, checksum match %v", n, sizes[i], sum == want)
					}
					results <- err
				}()
			}
			var wg sync.WaitGroup
			for i := range streams {
				st, err := p.ours.Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := st.Write(randomBytes(sizes[i], uint64(50+i))); err != nil {
						results <- fmt.Errorf("our Write: %w", err)
					}
					st.Close()
				}()
			}
			wg.Wait()
			p.ours.Close()
			for range streams {
				if err := <-results; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestInteropChaos: both implementations open streams concurrently and do random things on
// them (write, half-close, reset, full close, read part or all, deadlines) while the other
// side does the same; then the sessions close mid-traffic. Nothing may panic or hang: every
// goroutine returns within a few seconds of the close, and our session ends with an error
// matching ErrSessionClosed.
func TestInteropChaos(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			ocfg := interopConfig()
			ocfg.AcceptBacklog = 16
			ocfg.StreamCloseTimeout = 300 * time.Millisecond
			hcfg := hcConfig()
			// Their close timer must not fire during the chaos: hashicorp/yamux v0.1.2's
			// closeTimeout marks the stream closed before removing it from the session, and a
			// FIN of ours arriving in between kills their session ("unexpected FIN flag in
			// state 6"). Ours (300 ms) keeps firing.
			hcfg.StreamCloseTimeout = 10 * time.Second
			p := newInteropPair(t, top.ourClient, ocfg, hcfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			// chaos drives one stream with ops picked from seed.
			chaos := func(c net.Conn, seed uint64, closeWrite, reset func() error) {
				defer wg.Done()
				defer c.Close()
				r := randomBytes(8, seed)
				c.SetDeadline(time.Now().Add(time.Duration(50+int(r[0])*4) * time.Millisecond))
				payload := randomBytes(int(r[1])<<10, seed)
				switch r[2] % 6 {
				case 0: // write all, half-close, read all
					c.Write(payload)
					closeWrite()
					io.Copy(io.Discard, c)
				case 1: // write, reset
					c.Write(payload[:len(payload)/2])
					reset()
				case 2: // read a little, close
					c.Read(make([]byte, 10))
				case 3: // write concurrently with reading
					go c.Write(payload)
					io.Copy(io.Discard, c)
				case 4: // reset at once
					reset()
				case 5: // read everything, then write
					io.Copy(io.Discard, c)
					c.Write(payload)
				}
			}
			for i := range 2 { // acceptors
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i == 0 {
						for {
							st, err := p.ours.AcceptStream(ctx)
							if err != nil {
								return
							}
							wg.Add(1)
							go chaos(st, uint64(st.ID()), st.CloseWrite, st.Reset)
						}
					}
					for {
						st, err := p.theirs.AcceptStream()
						if err != nil {
							return
						}
						wg.Add(1)
						go chaos(st, uint64(st.StreamID())+1<<40, st.Close, st.Close)
					}
				}()
			}
			for i := range 2 { // openers
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; ctx.Err() == nil; j++ {
						if i == 0 {
							st, err := p.ours.Open(ctx)
							if err != nil {
								if ctx.Err() == nil {
									t.Errorf("our Open during the chaos: %v", err)
								}
								return
							}
							wg.Add(1)
							go chaos(st, uint64(j)<<20, st.CloseWrite, st.Reset)
						} else {
							st, err := p.theirs.OpenStream()
							if err != nil {
								if ctx.Err() == nil {
									t.Errorf("their OpenStream during the chaos: %v", err)
								}
								return
							}
							wg.Add(1)
							go chaos(st, uint64(j)<<21+1, st.Close, st.Close)
						}
						time.Sleep(2 * time.Millisecond)
					}
				}()
			}
			time.Sleep(1500 * time.Millisecond)
			if err := p.ours.Err(); err != nil {
				t.Errorf("our session ended during the chaos: %v", err)
			}
			if p.theirs.IsClosed() {
				t.Errorf("their session ended during the chaos")
			}
			opened := p.ours.Stats().StreamsOpened + p.ours.Stats().StreamsAccepted
			cancel()
			if top.ourClient {
				p.ours.Close()
			} else {
				p.theirs.Close()
			}
			done := make(chan struct{})
			go func() {
				wg.Wait()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Log(goroutineDump())
				t.Fatal("goroutines still running 10 s after the sessions closed")
			}
			select {
			case <-p.ours.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("our session did not end after the close")
			}
			if !errors.Is(p.ours.Err(), ErrSessionClosed) {
				t.Fatalf("our session error %v", p.ours.Err())
			}
			if opened < 10 {
				st := p.ours.Stats()
				t.Errorf("only %d streams in 1.5 s of chaos (opened %d, accepted %d, refused %d)", opened, st.StreamsOpened, st.StreamsAccepted, st.StreamsRefused)
			}
		})
	}
}

// TestInteropHTTP: net/http runs over the sessions, so both implementations' streams work as
// net.Conn with a real user (deadlines, half-reads, Close): an http.Server uses one session as
// its net.Listener and an http.Transport dials streams on the other, 40 requests with
// checksummed bodies each way, then a graceful Shutdown.
func TestInteropHTTP(t *testing.T) {
	for _, top := range topologies {
		for _, ourServer := range []bool{true, false} {
			name := top.name + "/http-server-theirs"
			if ourServer {
				name = top.name + "/http-server-ours"
			}
			t.Run(name, func(t *testing.T) {
				p := newInteropPair(t, top.ourClient, nil, nil)
				var ln net.Listener = p.theirs
				dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return p.ours.Open(ctx) }
				if ourServer {
					ln = p.ours
					dial = func(context.Context, string, string) (net.Conn, error) { return p.theirs.Open() }
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

// TestInteropTheirRefusal: HC refuses SYNs past its AcceptBacklog with RST. Our Open does not
// wait for ACKs (0-RTT), so the refusal shows up on the stream: Read fails with a
// remote *StreamError, the refused streams are freed, and the streams HC keeps carry data.
func TestInteropTheirRefusal(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			hcfg := hcConfig()
			hcfg.AcceptBacklog = 4
			p := newInteropPair(t, top.ourClient, nil, hcfg)
			ctx := testCtx(t, 10*time.Second)
			var sts []*Stream
			for i := range 10 {
				st, err := p.ours.Open(ctx)
				if err != nil {
					t.Fatalf("Open %d: %v", i, err)
				}
				// A refused stream's RST may already be back: then its Write fails.
				if _, err := st.Write([]byte("hello")); err != nil && (i < 4 || !errors.Is(err, ErrStreamReset)) {
					t.Fatalf("0-RTT Write %d: %v", i, err)
				}
				sts = append(sts, st)
			}
			for i, st := range sts[4:] {
				st.SetReadDeadline(time.Now().Add(5 * time.Second))
				var se *StreamError
				if _, err := st.Read(make([]byte, 1)); !errors.As(err, &se) || !se.Remote {
					t.Fatalf("refused stream %d: Read %v, want a remote *StreamError", i+4, err)
				}
				// (That a Write after this Read fails too is TestHostileResetIsAtomic's job.)
			}
			for i := range 4 {
				hst := p.theirAccept(t, 5*time.Second)
				if hst.StreamID() != sts[i].ID() {
					t.Fatalf("HC accepted %d, want %d", hst.StreamID(), sts[i].ID())
				}
				go func() {
					io.Copy(hst, hst)
					hst.Close()
				}()
				sts[i].CloseWrite()
				sts[i].SetReadDeadline(time.Now().Add(5 * time.Second))
				if got, err := io.ReadAll(sts[i]); err != nil || string(got) != "hello" {
					t.Fatalf("kept stream %d echoed %q, %v", i, got, err)
				}
				sts[i].Close()
			}
			waitFor(t, func() bool { return p.ours.NumStreams() == 0 && p.theirs.NumStreams() == 0 })
			if p.ours.Err() != nil || p.theirs.IsClosed() {
				t.Fatalf("a session ended: ours %v, theirs closed %v", p.ours.Err(), p.theirs.IsClosed())
			}
		})
	}
}

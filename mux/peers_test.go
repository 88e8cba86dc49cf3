package mux

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	lp "github.com/libp2p/go-yamux/v5"
)

// This file holds the peers the behaviour tests run against, and the helpers to drive them:
//
//   - the peer matrix (forEachPeer): a session of ours connected over loopback TCP to our own
//     mux, to github.com/hashicorp/yamux ("HC") and to github.com/libp2p/go-yamux/v5 ("LP"),
//     the foreign ones in both roles, each behind the small peer interface;
//   - the raw peer (rawPeer): a goroutine that writes hand-built frames and parses what comes
//     back, for protocol violations only a raw peer can produce, and for checks on the wire;
//   - waitFor, which waits for a visible state instead of sleeping.
//
// HC and LP differ from mux where it matters for ending streams and sessions: HC's Close is a
// half-close and it has no Reset and no CloseWrite; LP's Close also ends reading, it has Reset
// and CloseWrite, and it takes any GoAway as the end of the session.

// rawFrame is one frame as the raw peer read it.
type rawFrame struct {
	ver     uint8
	typ     frameType
	flags   uint16
	id      uint32
	length  uint32
	payload []byte
}

// rawHeader encodes one frame header by hand (not with the package's encoder, so an encoder
// bug cannot hide itself): version, type, flags u16, stream ID u32, length u32, big-endian.
func rawHeader(ver, typ uint8, flags uint16, id, length uint32) []byte {
	b := make([]byte, 12)
	b[0], b[1] = ver, typ
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[8:], length)
	return b
}

// rawPeer is the hostile end of a TCP connection whose other end runs a Session.
type rawPeer struct {
	t    testing.TB
	conn net.Conn

	autoPong  bool          // answer the session's pings (set before start)
	pongDelay time.Duration // answer them this late, as over a link with that round trip
	slow      bool          // read at about 800 KB/s (8 KiB per 10 ms)
	autoGrant bool          // give back window credit for every Data payload read

	frames  chan rawFrame // frames read, for expect; dropped (and counted) when full
	dropped atomic.Int64
	pongs   atomic.Int64 // Ping ACK frames read
	rsts    atomic.Int64 // RST frames read
	total   atomic.Int64 // frames read
	readErr chan error   // the reader's final error
	started bool
}

// hostileConfig is testConfig with no keepalive, no logging and short timeouts.
func hostileConfig() *Config {
	c := testConfig()
	c.EnableKeepAlive = false
	c.WriteTimeout = 2 * time.Second
	c.StreamOpenTimeout = 2 * time.Second
	c.StreamCloseTimeout = 2 * time.Second
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

// hostileServer starts a Server session over loopback TCP whose client end is a raw peer
// (which therefore opens odd stream IDs). Both are closed when the test ends.
func hostileServer(t testing.TB, cfg *Config) (*Session, *rawPeer) {
	t.Helper()
	return hostileSession(t, cfg, false, nil)
}

// hostileSession starts a session (server unless client) over loopback TCP; tune may adjust
// the two TCP ends (socket buffer sizes) before the session starts.
func hostileSession(t testing.TB, cfg *Config, client bool, tune func(peer, sess *net.TCPConn)) (*Session, *rawPeer) {
	t.Helper()
	pc, sc := tcpPair(t)
	if tune != nil {
		tune(pc.(*net.TCPConn), sc.(*net.TCPConn))
	}
	return hostileOver(t, cfg, client, pc, sc)
}

// hostilePipeServer is hostileServer over net.Pipe, for a test in a testing/synctest bubble:
// a pipe's reads and writes block durably and a TCP connection's do not, so only over a pipe
// do the session's timers (keepalive, idle) run on the bubble's fake clock.
func hostilePipeServer(t testing.TB, cfg *Config) (*Session, *rawPeer) {
	t.Helper()
	pc, sc := net.Pipe()
	return hostileOver(t, cfg, false, pc, sc)
}

// hostileOver starts a session (server unless client) on sc, with a raw peer on pc.
func hostileOver(t testing.TB, cfg *Config, client bool, pc, sc net.Conn) (*Session, *rawPeer) {
	t.Helper()
	if cfg == nil {
		cfg = hostileConfig()
	}
	var s *Session
	var err error
	if client {
		s, err = Client(sc, cfg)
	} else {
		s, err = Server(sc, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, conn: pc, frames: make(chan rawFrame, 1<<14), readErr: make(chan error, 1)}
	t.Cleanup(func() {
		pc.Close()
		s.Close()
		s.Wait()
		if p.started {
			<-p.readErr
		}
	})
	return s, p
}

// start runs the peer's reader: it parses every frame the session sends.
func (p *rawPeer) start() {
	p.started = true
	go func() {
		var src io.Reader = p.conn
		if p.slow {
			src = &slowReader{r: p.conn}
		}
		br := bufio.NewReaderSize(src, 8<<10)
		var hdr [12]byte
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				p.readErr <- err
				return
			}
			f := rawFrame{
				ver:    hdr[0],
				typ:    frameType(hdr[1]),
				flags:  binary.BigEndian.Uint16(hdr[2:]),
				id:     binary.BigEndian.Uint32(hdr[4:]),
				length: binary.BigEndian.Uint32(hdr[8:]),
			}
			if f.typ == typeData && f.length > 0 {
				f.payload = make([]byte, f.length)
				if _, err := io.ReadFull(br, f.payload); err != nil {
					p.readErr <- err
					return
				}
			}
			p.total.Add(1)
			if p.autoGrant && f.typ == typeData && f.length > 0 && f.flags&flagRST == 0 {
				p.conn.Write(rawHeader(0, uint8(typeWindowUpdate), 0, f.id, f.length))
			}
			if f.typ == typePing && f.flags&flagACK != 0 {
				p.pongs.Add(1) // counted, not queued: a flood's replies would crowd out the rest
				continue
			}
			if f.flags&flagRST != 0 {
				p.rsts.Add(1)
			}
			if p.autoPong && f.typ == typePing && f.flags&flagSYN != 0 {
				pong := rawHeader(0, uint8(typePing), flagACK, 0, f.length)
				if p.pongDelay > 0 {
					time.AfterFunc(p.pongDelay, func() { p.conn.Write(pong) })
				} else {
					p.conn.Write(pong)
				}
			}
			select {
			case p.frames <- f:
			default:
				p.dropped.Add(1)
			}
		}
	}()
}

// slowReader reads at most 8 KiB per 10 ms.
type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 8<<10)])
}

// send writes raw bytes to the session, failing the test if the write does not complete
// within 5 s (which would mean the session's receive loop stopped reading).
func (p *rawPeer) send(b ...[]byte) {
	p.t.Helper()
	if err := p.trySend(b...); err != nil {
		p.t.Fatalf("raw peer write: %v", err)
	}
}

func (p *rawPeer) trySend(b ...[]byte) error {
	p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	defer p.conn.SetWriteDeadline(time.Time{})
	_, err := p.conn.Write(bytes.Join(b, nil))
	return err
}

// frame writes one frame: header plus payload.
func (p *rawPeer) frame(typ frameType, flags uint16, id uint32, payload []byte) {
	p.t.Helper()
	p.send(rawHeader(0, uint8(typ), flags, id, uint32(len(payload))), payload)
}

// expect returns the first frame (skipping others) that match wants, failing after d.
func (p *rawPeer) expect(d time.Duration, what string, match func(rawFrame) bool) rawFrame {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f := <-p.frames:
			if match(f) {
				return f
			}
		case err := <-p.readErr:
			p.readErr <- err
			// Frames read before the end come first.
			for {
				select {
				case f := <-p.frames:
					if match(f) {
						return f
					}
					continue
				default:
				}
				break
			}
			p.t.Fatalf("waiting for %s: connection ended: %v", what, err)
		case <-timer.C:
			p.t.Fatalf("no %s within %v", what, d)
		}
	}
}

// expectNone fails if a frame matching match arrives within d.
func (p *rawPeer) expectNone(d time.Duration, what string, match func(rawFrame) bool) {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f := <-p.frames:
			if match(f) {
				p.t.Fatalf("unexpected %s: %+v", what, f)
			}
		case <-timer.C:
			return
		}
	}
}

// drainFrames discards queued frames until none arrives for quiet, so a test that made the
// session send thousands of frames can expect new ones without the queue having overflowed.
func (p *rawPeer) drainFrames(quiet time.Duration) {
	for {
		select {
		case <-p.frames:
		case <-time.After(quiet):
			return
		}
	}
}

func isRST(id uint32) func(rawFrame) bool {
	return func(f rawFrame) bool { return f.id == id && f.flags&flagRST != 0 }
}

func isGoAway(f rawFrame) bool { return f.typ == typeGoAway }

// expectProtocolError checks the outcome of a fatal protocol violation: the session sends
// GoAway with code 1, and ends with an error that is a *ProtocolError with Code 1 and matches
// ErrSessionClosed.
func expectProtocolError(t *testing.T, s *Session, p *rawPeer) {
	t.Helper()
	f := p.expect(5*time.Second, "GoAway", isGoAway)
	if f.length != GoAwayProtocolError || f.id != 0 || f.ver != 0 {
		t.Fatalf("GoAway frame %+v, want code %d on stream 0", f, GoAwayProtocolError)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still running after a protocol error")
	}
	err := s.Err()
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != GoAwayProtocolError {
		t.Fatalf("session error %v (%T), want a *ProtocolError with code 1", err, err)
	}
	if !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("session error %v does not match ErrSessionClosed", err)
	}
}

// acceptOne accepts a stream on s within 3 s.
func acceptOne(t *testing.T, s *Session) *Stream {
	t.Helper()
	st, err := s.AcceptStream(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	return st
}

// checkLegitStream proves the session still works for a well-behaved stream: the raw peer
// opens stream id with data and FIN, the session accepts it and reads exactly that data, and
// its reply reaches the peer.
func checkLegitStream(t *testing.T, s *Session, p *rawPeer, id uint32) {
	t.Helper()
	msg := []byte("legit request after the attack")
	p.frame(typeData, flagSYN|flagFIN, id, msg)
	st := acceptOne(t, s)
	if st.ID() != id {
		t.Fatalf("accepted stream %d, want %d", st.ID(), id)
	}
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("legit stream read %q, %v; want %q", got, err, msg)
	}
	if _, err := st.Write([]byte("reply")); err != nil {
		t.Fatalf("legit stream write: %v", err)
	}
	st.Close()
	f := p.expect(5*time.Second, "reply data", func(f rawFrame) bool { return f.typ == typeData && f.id == id && len(f.payload) > 0 })
	if string(f.payload) != "reply" {
		t.Fatalf("reply payload %q", f.payload)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
}

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

func sha256Of(b []byte) [32]byte {
	_, sum, _ := sumReader(bytes.NewReader(b))
	return sum
}

// lpConfig is go-yamux's default config with logging and keepalive off.
func lpConfig() *lp.Config {
	c := lp.DefaultConfig()
	c.LogOutput = io.Discard
	c.EnableKeepAlive = false
	c.ConnectionWriteTimeout = 5 * time.Second
	return c
}

// lpPair is one mux session and one go-yamux session connected over loopback TCP.
type lpPair struct {
	ours   *Session
	theirs *lp.Session
}

// newLPPair connects a mux session (client if ourClient; nil ours means interopConfig) with a
// go-yamux session in the other role. Both end with the test.
func newLPPair(t testing.TB, ourClient bool, ours *Config) *lpPair {
	t.Helper()
	return newLPPairConfig(t, ourClient, ours, nil)
}

// newLPPairConfig is newLPPair with tune, if not nil, adjusting lpConfig for their side.
func newLPPairConfig(t testing.TB, ourClient bool, ours *Config, tune func(*lp.Config)) *lpPair {
	t.Helper()
	if ours == nil {
		ours = interopConfig()
	}
	theirs := lpConfig()
	if tune != nil {
		tune(theirs)
	}
	cc, sc := tcpPair(t)
	var p lpPair
	var err error
	if ourClient {
		p.ours, err = Client(cc, ours)
		if err == nil {
			p.theirs, err = lp.Server(sc, theirs, nil)
		}
	} else {
		p.ours, err = Server(sc, ours)
		if err == nil {
			p.theirs, err = lp.Client(cc, theirs, nil)
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
		<-p.theirs.CloseChan()
	})
	return &p
}

// theirAccept accepts one stream on the go-yamux side within d.
func (p *lpPair) theirAccept(t testing.TB, d time.Duration) *lp.Stream {
	t.Helper()
	c, err := lpSide{p.theirs}.Accept(testCtx(t, d))
	if err != nil {
		t.Fatalf("their AcceptStream within %v: %v", d, err)
	}
	return c.(*lp.Stream)
}

// openToLP opens a stream on the mux side (Open sends the SYN at once) and accepts it on the
// go-yamux side.
func openToLP(t testing.TB, p *lpPair) (*Stream, *lp.Stream) {
	t.Helper()
	st, err := p.ours.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st, p.theirAccept(t, 5*time.Second)
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

// ---- The peer matrix ----

// peer is the far end of a session under test, whatever implements it. Streams are net.Conns;
// what a behaviour needs beyond net.Conn it asks for by interface (CloseWrite, Reset), or with
// the helpers below for what the implementations name differently.
type peer interface {
	Open(ctx context.Context) (net.Conn, error)   // open a stream from the peer's side
	Accept(ctx context.Context) (net.Conn, error) // accept a stream our side opened
	Close() error                                 // end the peer's session
}

// peerKind names one kind of peer and how to start it against a session of ours.
type peerKind struct {
	name      string
	impl      string // "mux", "yamux" (hashicorp/yamux) or "go-yamux" (libp2p/go-yamux/v5)
	ourClient bool   // our session is the client (opens odd IDs)
}

var (
	muxPeer          = peerKind{"mux", "mux", true}
	yamuxOursClient  = peerKind{"yamux/ours-client", "yamux", true}
	yamuxTheirClient = peerKind{"yamux/theirs-client", "yamux", false}
	lpOursClient     = peerKind{"go-yamux/ours-client", "go-yamux", true}
	lpTheirClient    = peerKind{"go-yamux/theirs-client", "go-yamux", false}

	// allPeers: every implementation, in both roles for the foreign ones.
	allPeers = []peerKind{muxPeer, yamuxOursClient, yamuxTheirClient, lpOursClient, lpTheirClient}
	// yamuxPeers and lpPeers: one foreign implementation in both roles.
	yamuxPeers = []peerKind{yamuxOursClient, yamuxTheirClient}
	lpPeers    = []peerKind{lpOursClient, lpTheirClient}
)

// peerOpts configures both ends; zero fields mean the defaults of the existing helpers.
type peerOpts struct {
	ours    *Config             // our session; nil: interopConfig
	mux     *Config             // the mux peer's session; nil: interopConfig
	yamux   func(*yamux.Config) // adjusts hcConfig for the hashicorp/yamux peer
	goyamux func(*lp.Config)    // adjusts lpConfig for the go-yamux peer

	pipe     bool                    // connect over net.Pipe (no buffering) instead of loopback TCP
	wrapPeer func(net.Conn) net.Conn // wraps the peer's end of the connection
}

// forEachPeer runs f as a subtest, named by peer, against each kind in kinds: a session of
// ours connected over loopback TCP to a fresh peer session. Both end with the subtest.
func forEachPeer(t *testing.T, kinds []peerKind, o peerOpts, f func(t *testing.T, ours *Session, p peer)) {
	t.Helper()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			ours, p := startPeer(t, k, o)
			f(t, ours, p)
		})
	}
}

// startPeer connects a session of ours with a peer of kind k.
func startPeer(t *testing.T, k peerKind, o peerOpts) (*Session, peer) {
	t.Helper()
	ocfg := o.ours
	if ocfg == nil {
		ocfg = interopConfig()
	}
	var cc, sc net.Conn
	if o.pipe {
		cc, sc = net.Pipe()
	} else {
		cc, sc = tcpPair(t)
	}
	ourConn, theirConn := sc, cc
	if k.ourClient {
		ourConn, theirConn = cc, sc
	}
	if o.wrapPeer != nil {
		theirConn = o.wrapPeer(theirConn)
	}
	start := Server
	if k.ourClient {
		start = Client
	}
	ours, err := start(ourConn, ocfg)
	if err != nil {
		cc.Close()
		sc.Close()
		t.Fatal(err)
	}
	var p peer
	var wait func() // waits for the peer session's end
	switch k.impl {
	case "mux":
		mcfg := o.mux
		if mcfg == nil {
			mcfg = interopConfig()
		}
		var s *Session
		if k.ourClient {
			s, err = Server(theirConn, mcfg)
		} else {
			s, err = Client(theirConn, mcfg)
		}
		p, wait = muxSide{s}, func() { s.Wait() }
	case "yamux":
		hcfg := hcConfig()
		if o.yamux != nil {
			o.yamux(hcfg)
		}
		var s *yamux.Session
		if k.ourClient {
			s, err = yamux.Server(theirConn, hcfg)
		} else {
			s, err = yamux.Client(theirConn, hcfg)
		}
		p, wait = yamuxSide{s}, func() { <-s.CloseChan() }
	case "go-yamux":
		lcfg := lpConfig()
		if o.goyamux != nil {
			o.goyamux(lcfg)
		}
		var s *lp.Session
		if k.ourClient {
			s, err = lp.Server(theirConn, lcfg, nil)
		} else {
			s, err = lp.Client(theirConn, lcfg, nil)
		}
		p, wait = lpSide{s}, func() { <-s.CloseChan() }
	default:
		err = fmt.Errorf("unknown peer %q", k.impl)
	}
	if err != nil {
		ours.Close()
		theirConn.Close()
		ours.Wait()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		ours.Close()
		ours.Wait()
		wait()
	})
	return ours, p
}

// muxSide is a mux session as the peer.
type muxSide struct{ s *Session }

// streamConn returns a stream as a net.Conn, or a nil net.Conn with err (never a typed nil).
func streamConn[T net.Conn](st T, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (m muxSide) Open(ctx context.Context) (net.Conn, error) { return streamConn(m.s.Open(ctx)) }

func (m muxSide) Accept(ctx context.Context) (net.Conn, error) {
	return streamConn(m.s.AcceptStream(ctx))
}

func (m muxSide) Close() error { return m.s.Close() }

func (m muxSide) Ping() (time.Duration, error) { return m.s.Ping(context.Background()) }

func (m muxSide) GoAway() error { return m.s.GoAway() }

// yamuxSide is a hashicorp/yamux session as the peer.
type yamuxSide struct{ s *yamux.Session }

func (y yamuxSide) Open(context.Context) (net.Conn, error) { return streamConn(y.s.OpenStream()) }

func (y yamuxSide) Accept(ctx context.Context) (net.Conn, error) {
	return streamConn(y.s.AcceptStreamWithContext(ctx))
}

func (y yamuxSide) Close() error { return y.s.Close() }

func (y yamuxSide) Ping() (time.Duration, error) { return y.s.Ping() }

func (y yamuxSide) GoAway() error { return y.s.GoAway() }

// lpSide is a go-yamux session as the peer.
type lpSide struct{ s *lp.Session }

func (l lpSide) Open(ctx context.Context) (net.Conn, error) { return streamConn(l.s.OpenStream(ctx)) }

// Accept waits for go-yamux's AcceptStream, which takes no context, until ctx ends; a stream
// accepted after that is reset.
func (l lpSide) Accept(ctx context.Context) (net.Conn, error) {
	type result struct {
		st  *lp.Stream
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := l.s.AcceptStream()
		ch <- result{st, err}
	}()
	select {
	case r := <-ch:
		return streamConn(r.st, r.err)
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.st != nil {
				r.st.Reset()
			}
		}()
		return nil, ctx.Err()
	}
}

func (l lpSide) Close() error { return l.s.Close() }

func (l lpSide) Ping() (time.Duration, error) { return l.s.Ping() }

// GoAway sends go-yamux's GoAway 0; its own session goes on. (A GoAway go-yamux receives
// ends its session: it takes any GoAway as the end.)
func (l lpSide) GoAway() error { return l.s.GoAway() }

// peerEnded reports whether the peer's session has ended.
func peerEnded(p peer) bool {
	switch p := p.(type) {
	case muxSide:
		return p.s.Err() != nil
	case yamuxSide:
		return p.s.IsClosed()
	case lpSide:
		return p.s.IsClosed()
	}
	panic(fmt.Sprintf("unknown peer %T", p))
}

// peerListener returns the peer's session as a net.Listener (all three implementations' are).
func peerListener(p peer) net.Listener {
	switch p := p.(type) {
	case muxSide:
		return p.s
	case yamuxSide:
		return p.s
	case lpSide:
		return p.s
	}
	panic(fmt.Sprintf("unknown peer %T", p))
}

// peerStreams returns how many streams the peer's session holds.
func peerStreams(p peer) int {
	switch p := p.(type) {
	case muxSide:
		return p.s.NumStreams()
	case yamuxSide:
		return p.s.NumStreams()
	case lpSide:
		return p.s.NumStreams()
	}
	panic(fmt.Sprintf("unknown peer %T", p))
}

// peerPing sends a ping from the peer and returns its round-trip time.
func peerPing(p peer) (time.Duration, error) {
	return p.(interface{ Ping() (time.Duration, error) }).Ping()
}

// streamID returns the ID of a stream of any implementation.
func streamID(c net.Conn) uint32 {
	switch c := c.(type) {
	case *Stream:
		return c.ID()
	case interface{ StreamID() uint32 }:
		return c.StreamID()
	}
	panic(fmt.Sprintf("%T has no stream ID", c))
}

// peerEcho serves the peer's side: every accepted stream is echoed until our FIN, then
// half-closed and closed.
func peerEcho(ctx context.Context, p peer) {
	for {
		c, err := p.Accept(ctx)
		if err != nil {
			return
		}
		go func() {
			io.Copy(c, c)
			peerHalfClose(c)
			c.Close()
		}()
	}
}

// acceptPeer accepts, on the peer, the stream our side just opened, within 5 s.
func acceptPeer(t testing.TB, p peer) net.Conn {
	t.Helper()
	c, err := p.Accept(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("peer Accept: %v", err)
	}
	return c
}

// openToPeer opens a stream on our side and accepts it on the peer.
func openToPeer(t testing.TB, ours *Session, p peer) (*Stream, net.Conn) {
	t.Helper()
	st, err := ours.Open(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return st, acceptPeer(t, p)
}

// openFromPeer opens a stream on the peer and accepts it on our side. The peer's Open sends
// its SYN at once (hashicorp/yamux and go-yamux too), so nothing needs to be written first.
func openFromPeer(t testing.TB, ours *Session, p peer) (net.Conn, *Stream) {
	t.Helper()
	c, err := p.Open(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("peer Open: %v", err)
	}
	st, err := ours.AcceptStream(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("our AcceptStream: %v", err)
	}
	return c, st
}

// openEitherWay opens a stream from our side (openToPeer) or, if theyOpen, from the peer's
// (openFromPeer), and returns our end and theirs.
func openEitherWay(t testing.TB, ours *Session, p peer, theyOpen bool) (*Stream, net.Conn) {
	t.Helper()
	if theyOpen {
		pst, ost := openFromPeer(t, ours, p)
		return ost, pst
	}
	return openToPeer(t, ours, p)
}

// peerHalfClose half-closes a peer stream: CloseWrite where the implementation has it,
// Close on hashicorp/yamux, whose Close is its half-close (it reads on until our FIN).
func peerHalfClose(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	if _, ok := c.(*yamux.Stream); ok {
		return c.Close()
	}
	panic(fmt.Sprintf("%T has no half-close", c))
}

// isPeerReset reports whether err is the error a peer implementation's stream call returns
// once the stream was reset: ErrStreamReset (mux), yamux.ErrConnectionReset (hashicorp/yamux)
// or go-yamux's ErrStreamReset.
func isPeerReset(err error) bool {
	return errors.Is(err, ErrStreamReset) || errors.Is(err, yamux.ErrConnectionReset) || errors.Is(err, lp.ErrStreamReset)
}

package demux

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"time"
)

// initialH2Streams is what net/http's HTTP/2 client assumes for
// MAX_CONCURRENT_STREAMS before the peer's SETTINGS arrive.
const initialH2Streams = 100

// tlsSettleWait bounds how long an https:// connection is held to one stream while
// waiting to learn the peer's stream limit (no frame watching under TLS).
const tlsSettleWait = 2 * time.Second

// upstreamProto is what depends on the upstream's protocol: how a connection is set
// up and how its stream limit becomes known. New picks one from the Upstream URL's
// scheme: h2cProto (the frames are watched: the limit comes from the peer's
// SETTINGS), h2TLSProto (TLS hides the frames: the limit is read off net/http's
// client) or h1Proto (one request per connection).
type upstreamProto interface {
	String() string
	// scheme is the URL scheme for Transport.NewClientConn.
	scheme() string
	// transport sets up t, which dials uc's connection.
	transport(t *http.Transport, uc *uconn)
	// initial is a new connection's stream limit before the peer's is known, and
	// whether it is final.
	initial() (limit int, settled bool)
	// opened runs once uc's ClientConn exists, answered after each response on it.
	opened(u *upstream, uc *uconn)
	answered(u *upstream, uc *uconn)
	// multiplexed reports HTTP/2: many streams per connection, connections dialled
	// one at a time, a connection that takes no more streams is going away, and a
	// cancelled request costs only its stream.
	multiplexed() bool
	// hidesGoAway reports that GOAWAY frames cannot be seen: a connection that stops
	// taking streams is counted as having received one.
	hidesGoAway() bool
}

func newProto(mode upstreamMode, cfg Config) upstreamProto {
	switch mode {
	case modeH2C:
		return h2cProto{}
	case modeH2TLS:
		c := &tls.Config{}
		if cfg.TLSConfig != nil {
			c = cfg.TLSConfig.Clone()
		}
		c.NextProtos = []string{"h2"}
		return h2TLSProto{tls: c, handshake: cfg.DialTimeout}
	}
	return h1Proto{}
}

// h2cProto: HTTP/2 with prior knowledge. A connection carries no request until the
// peer's first SETTINGS frame has been processed (RFC 9113 §3.4), which the frame
// sniffer reports. Its writes are coalesced by a batchConn.
type h2cProto struct{}

func (h2cProto) String() string { return "h2c" }
func (h2cProto) scheme() string { return "http" }
func (h2cProto) transport(t *http.Transport, uc *uconn) {
	t.Protocols.SetUnencryptedHTTP2(true)
	dial := t.DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &frameSniffer{Conn: newBatchConn(c), ev: uc}, nil
	}
}
func (h2cProto) initial() (int, bool)       { return 0, false }
func (h2cProto) opened(*upstream, *uconn)   {}
func (h2cProto) answered(*upstream, *uconn) {}
func (h2cProto) multiplexed() bool          { return true }
func (h2cProto) hidesGoAway() bool          { return false }

// h2TLSProto: HTTP/2 over TLS (ALPN h2). A connection carries one request until its
// limit is read off net/http's client (pollSettle, settleFromClient).
type h2TLSProto struct {
	tls       *tls.Config
	handshake time.Duration
}

func (h2TLSProto) String() string { return "h2" }
func (h2TLSProto) scheme() string { return "https" }
func (p h2TLSProto) transport(t *http.Transport, uc *uconn) {
	t.Protocols.SetHTTP2(true)
	t.TLSClientConfig = p.tls
	t.TLSHandshakeTimeout = p.handshake
	t.HTTP2.CountError = uc.countError
}
func (h2TLSProto) initial() (int, bool) { return 1, false }
func (h2TLSProto) opened(u *upstream, uc *uconn) {
	u.wg.Add(1)
	go u.pollSettle(uc)
}
func (h2TLSProto) answered(u *upstream, uc *uconn) { u.settleFromClient(uc) }
func (h2TLSProto) multiplexed() bool               { return true }
func (h2TLSProto) hidesGoAway() bool               { return true }

// h1Proto: HTTP/1.1, one request at a time per connection.
type h1Proto struct{}

func (h1Proto) String() string                        { return "http/1.1" }
func (h1Proto) scheme() string                        { return "http" }
func (h1Proto) transport(t *http.Transport, _ *uconn) { t.Protocols.SetHTTP1(true) }
func (h1Proto) initial() (int, bool)                  { return 1, true }
func (h1Proto) opened(*upstream, *uconn)              {}
func (h1Proto) answered(*upstream, *uconn)            {}
func (h1Proto) multiplexed() bool                     { return false }
func (h1Proto) hidesGoAway() bool                     { return false }

// countError receives net/http's HTTP/2 error counters for an https:// conn, where
// frames cannot be watched. Go 1.26 passes HTTP2Config.CountError to the HTTP/2
// client only partly, so counts seen here are a floor.
func (uc *uconn) countError(kind string) {
	switch {
	case strings.HasPrefix(kind, "recv_rststream_"):
		uc.u.st.resets.Add(1)
	case strings.HasPrefix(kind, "recv_goaway_"):
		uc.u.mu.Lock()
		counted := uc.sawGoAway
		uc.sawGoAway = true
		uc.u.mu.Unlock()
		if !counted {
			uc.u.st.goAways.Add(1)
		}
	}
}

// settleFromClient fixes an https:// conn's limit once a response proves the peer's
// SETTINGS were processed (they precede every other server frame, RFC 9113 §3.4).
func (u *upstream) settleFromClient(uc *uconn) {
	u.mu.Lock()
	done := uc.settled
	u.mu.Unlock()
	if done {
		return
	}
	if n := uc.cc.Available() + uc.cc.InFlight(); n > 0 {
		uc.settings(uint32(n), true)
	}
}

// pollSettle learns an https:// conn's limit without a request: the client's
// Available+InFlight moves off its assumed 100 when SETTINGS arrive. A peer that
// advertises exactly 100 is indistinguishable, so the wait is bounded.
func (u *upstream) pollSettle(uc *uconn) {
	defer u.wg.Done()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	limit := time.NewTimer(tlsSettleWait)
	defer limit.Stop()
	for {
		select {
		case <-u.ctx.Done():
			return
		case <-limit.C:
			uc.settings(initialH2Streams, true)
			return
		case <-tick.C:
		}
		u.mu.Lock()
		done := uc.settled
		u.mu.Unlock()
		if done || uc.cc.Err() != nil {
			return
		}
		if n := uc.cc.Available() + uc.cc.InFlight(); n != initialH2Streams && n > 0 {
			uc.settings(uint32(n), true)
			return
		}
	}
}

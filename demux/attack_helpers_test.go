package demux

// Helpers for the hostile-client suites (smuggling_test.go, fairness_test.go,
// trailers_test.go, inverse_churn_test.go). They serve a Proxy the way a user would:
// srv := NewServer(addr, p) and then srv.Serve(ln) or srv.ServeTLS(ln, "", ""), with
// NewServer's defaults and no listener wrapper, and they only depend on newBackend and
// waitFor from helpers_test.go.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// serveVia names the Server method a servedFront is served with.
type serveVia string

const (
	viaServe             serveVia = "Serve"             // srv.Serve(ln)
	viaServeTLS          serveVia = "ServeTLS"          // srv.ServeTLS(ln, "", ""), TLSConfig.Certificates set
	viaListenAndServe    serveVia = "ListenAndServe"    // srv.ListenAndServe() on srv.Addr
	viaListenAndServeTLS serveVia = "ListenAndServeTLS" // srv.ListenAndServeTLS(certFile, keyFile)
)

func (v serveVia) tls() bool { return v == viaServeTLS || v == viaListenAndServeTLS }

// servedFront is a Proxy served by NewServer on loopback, through one of its serving
// methods, with no listener wrapper.
type servedFront struct {
	p       *Proxy
	addr    string
	url     string      // http://addr or https://addr
	tls     bool        // served over TLS
	clientT *tls.Config // for TLS clients: trusts the test certificate
}

// newServedFront serves a Proxy for cfg with srv.Serve(ln), or srv.ServeTLS(ln, "", "")
// when useTLS is set.
func newServedFront(t testing.TB, cfg Config, useTLS bool) *servedFront {
	t.Helper()
	if useTLS {
		return newServedFrontVia(t, cfg, viaServeTLS)
	}
	return newServedFrontVia(t, cfg, viaServe)
}

// newServedFrontVia serves a Proxy for cfg with NewServer's defaults through via. Only
// ErrorLog is changed (hostile input makes the server log protocol errors), and
// ConnState is wrapped (the previous one is still called) to count live connections.
// Over TLS the certificate comes from testCert: in srv.TLSConfig.Certificates for
// ServeTLS, in PEM files for ListenAndServeTLS.
func newServedFrontVia(t testing.TB, cfg Config, via serveVia) *servedFront {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if via == viaListenAndServe || via == viaListenAndServeTLS {
		ln.Close() // ListenAndServe listens on srv.Addr itself: a port just freed
	}
	srv := NewServer(addr, p)
	srv.ErrorLog = log.New(io.Discard, "", 0)
	// Count live client connections, so cleanup can wait for the server's connection
	// goroutines (Close does not; one answering 431 lingers in closeWriteAndWait).
	var open atomic.Int64
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if prev != nil {
			prev(c, st)
		}
		switch st {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	f := &servedFront{p: p, addr: addr, url: "http://" + addr, tls: via.tls()}
	if f.tls {
		cert, pool := testCert(t)
		f.url = "https://" + addr
		f.clientT = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		if via == viaServeTLS {
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		}
	}
	served := make(chan error, 1)
	switch via {
	case viaServe:
		go func() { served <- srv.Serve(ln) }()
	case viaServeTLS:
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	case viaListenAndServe:
		go func() { served <- srv.ListenAndServe() }()
	case viaListenAndServeTLS:
		certFile, keyFile := testCertFiles(t)
		go func() { served <- srv.ListenAndServeTLS(certFile, keyFile) }()
	}
	t.Cleanup(func() {
		srv.Close()
		<-served
		p.Close()
		waitSoft(5*time.Second, func() bool { return open.Load() <= 0 })
	})
	if via == viaListenAndServe || via == viaListenAndServeTLS {
		up := waitSoft(5*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		if !up {
			t.Fatalf("%s: nothing listening on %s", via, addr)
		}
	}
	return f
}

// dial opens a raw client connection to f: TCP, or TLS negotiating ALPN "http/1.1"
// where f is served over TLS. It has an overall deadline d.
func (f *servedFront) dial(t testing.TB, d time.Duration) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(d))
	if !f.tls {
		return c
	}
	cfg := f.clientT.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		t.Fatalf("TLS handshake: %v", err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		tc.Close()
		t.Fatalf("ALPN negotiated %q, want http/1.1", p)
	}
	return tc
}

var (
	certOnce sync.Once
	certVal  tls.Certificate
	certPool *x509.CertPool
	certErr  error
)

// testCert returns a self-signed ECDSA P-256 certificate for 127.0.0.1 (IP SAN) and
// localhost, and a pool trusting it. It is made once per test binary.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "demux test"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:              []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			certErr = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			certErr = err
			return
		}
		certVal = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		certPool = x509.NewCertPool()
		certPool.AddCert(leaf)
	})
	if certErr != nil {
		t.Fatal(certErr)
	}
	return certVal, certPool
}

// testCertFiles writes testCert's certificate and key as PEM files in a temporary
// directory, for ListenAndServeTLS.
func testCertFiles(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	cert, _ := testCert(t)
	der, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// seenRequest is what a recording backend received: one entry per handler call.
type seenRequest struct {
	Method, Path, Body string // Body is "!err" when reading it failed
	Header             http.Header
}

func (s seenRequest) String() string { return s.Path + ":" + s.Body }

// requestLog records what a backend received, in arrival order.
type requestLog struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (l *requestLog) add(s seenRequest) {
	l.mu.Lock()
	l.reqs = append(l.reqs, s)
	l.mu.Unlock()
}

func (l *requestLog) all() []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]seenRequest(nil), l.reqs...)
}

// summary lists the requests as "path:body" separated by spaces, or "-" for none.
func (l *requestLog) summary() string {
	var parts []string
	for _, r := range l.all() {
		parts = append(parts, r.String())
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// rawResponse is one response read off a raw client connection.
type rawResponse struct {
	status int
	header http.Header
	body   string
	err    error // reading the body failed
}

// readRawResponse reads one response from br; a nil result means the connection ended
// (or its deadline passed) with err.
func readRawResponse(br *bufio.Reader) (*rawResponse, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	b, berr := io.ReadAll(resp.Body)
	resp.Body.Close()
	return &rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b), err: berr}, nil
}

// isTimeout reports whether err is a deadline expiry (the connection is still open).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// probeFresh sends one GET on a new HTTP/1.1 connection and reports how long the
// answer took; it fails unless the answer is 200 with body want within limit.
func probeFresh(url, path, want string, limit time.Duration) (time.Duration, error) {
	tr := &http.Transport{Protocols: new(http.Protocols), DisableKeepAlives: true}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: limit}
	start := time.Now()
	resp, err := c.Get(url + path)
	if err != nil {
		return time.Since(start), err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	if resp.StatusCode != 200 || string(b) != want {
		return d, fmt.Errorf("status %d body %q", resp.StatusCode, b)
	}
	if d > limit {
		return d, fmt.Errorf("answered after %v", d)
	}
	return d, nil
}

// waitSoft waits up to d for cond and reports whether it held; it never fails the
// test (for attack set-up that a fixed proxy may legitimately never reach, such as
// "every attacker holds an upstream stream").
func waitSoft(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// h2Attacker is a raw HTTP/2 prior-knowledge client (x/net/http2 Framer) for hostile
// input. Its reader goroutine drains every frame the server sends (so the server is
// never blocked on TCP) and acknowledges nothing except SETTINGS.
type h2Attacker struct {
	c  net.Conn
	fr *http2.Framer
	wm sync.Mutex // serialises writes (the reader writes SETTINGS ACKs)

	enc *hpack.Encoder
	buf strings.Builder

	goAway   atomic.Int64
	rst      atomic.Int64
	statuses sync.Map // stream ID → ":status"
	done     chan struct{}
}

// dialH2Attacker connects to addr (h2c, prior knowledge), sends the preface and a
// SETTINGS frame with settings, and starts reading. The connection has deadline d.
func dialH2Attacker(t testing.TB, addr string, d time.Duration, settings ...http2.Setting) *h2Attacker {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		c.Close()
		t.Fatal(err)
	}
	a := &h2Attacker{c: c, fr: http2.NewFramer(c, c), done: make(chan struct{})}
	a.enc = hpack.NewEncoder(&a.buf)
	a.fr.ReadMetaHeaders = hpack.NewDecoder(64<<10, nil)
	a.fr.MaxHeaderListSize = 1 << 20
	if err := a.fr.WriteSettings(settings...); err != nil {
		c.Close()
		t.Fatal(err)
	}
	go a.read()
	return a
}

func (a *h2Attacker) read() {
	defer close(a.done)
	for {
		f, err := a.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				continue
			}
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				a.wm.Lock()
				a.fr.WriteSettingsAck()
				a.wm.Unlock()
			}
		case *http2.GoAwayFrame:
			a.goAway.Add(1)
		case *http2.RSTStreamFrame:
			a.rst.Add(1)
		case *http2.MetaHeadersFrame:
			a.statuses.Store(f.StreamID, f.PseudoValue("status"))
		}
	}
}

// request sends HEADERS (END_STREAM) for a GET of path on stream id.
func (a *h2Attacker) request(id uint32, path string) error {
	a.wm.Lock()
	defer a.wm.Unlock()
	a.buf.Reset()
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		a.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	return a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte(a.buf.String()), EndStream: true, EndHeaders: true})
}

// reset sends RST_STREAM CANCEL for stream id.
func (a *h2Attacker) reset(id uint32) error {
	a.wm.Lock()
	defer a.wm.Unlock()
	return a.fr.WriteRSTStream(id, http2.ErrCodeCancel)
}

// close ends the connection and waits for the reader.
func (a *h2Attacker) close() {
	a.c.Close()
	<-a.done
}

// connCounter counts a backend's accepted and currently open TCP connections
// (an http.Server ConnState hook).
type connCounter struct {
	accepts, open, peak atomic.Int64
}

func (cc *connCounter) hook(s *http.Server) {
	s.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			cc.accepts.Add(1)
			n := cc.open.Add(1)
			for p := cc.peak.Load(); n > p && !cc.peak.CompareAndSwap(p, n); p = cc.peak.Load() {
			}
		case http.StateClosed, http.StateHijacked:
			cc.open.Add(-1)
		}
	}
}

package demux

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// frontConn is a client connection as the Server's net/http sees it. It is the one
// parser of the HTTP/1.1 requests the client sends (RFC 9112): it reads each request
// head, decides its framing, and hands net/http a canonical copy: every field on one
// CRLF-terminated line, at most one Content-Length, "Transfer-Encoding: chunked" only
// for a chunked body, which it re-chunks (sizes in lowercase hex, extensions dropped).
// net/http parses that copy and cannot disagree with it about where a request ends,
// because there is nothing left to interpret.
//
// A request it refuses never reaches net/http, and neither does anything after it:
// instead net/http reads a request line it rejects with 400 (or, for a head longer
// than the limit, one it rejects with 431) and then end of input, so it answers and
// closes the connection. It refuses: Content-Length with Transfer-Encoding (RFC 9112
// §6.1), Transfer-Encoding in HTTP/1.0 (§6.1), obs-fold (§5.2), a bare CR or LF
// (§2.2), whitespace before a field's colon (§5.1), a malformed request line or a
// version other than HTTP/1.0 and 1.1, control characters in a field value, differing
// or malformed Content-Length values (§6.3), and malformed chunked framing (§7.1),
// which in a body just ends the input (net/http then fails the body). A
// Transfer-Encoding other than a single "chunked" is passed to net/http, which answers
// 501, followed by end of input.
//
// Two things pass through unparsed: the HTTP/2 connection preface as the first bytes
// of a connection (RFC 9113 §3.4; only when the server takes h2c), and everything
// after a request whose Connection field has the "upgrade" token (RFC 9110 §7.8).
// Such a request is handed on with "Connection: close" added, so net/http closes the
// connection after its response unless the handler hijacks it as a tunnel.
//
// net/http calls Read from one goroutine at a time (its handler or its background
// read); mu makes that assumption safe. Parsing state survives a Read that fails on a
// deadline, so SetReadDeadline may interrupt it at any point.
type frontConn struct {
	net.Conn
	maxHead int  // longest head or trailer section accepted, in bytes
	h2c     bool // the server takes HTTP/2 with prior knowledge on this connection

	mu     sync.Mutex
	state  frontState
	after  frontState // the state that follows the current request's body
	left   int64      // bytes left in a Content-Length body or a chunk
	begun  bool       // the connection's first bytes were seen
	in     []byte     // client bytes read, in[inPos:] not yet consumed
	inPos  int
	out    []byte // canonical bytes for net/http, out[outPos:] not yet returned
	outPos int
	scan   int // in[inPos:inPos+scan] holds no complete head or line
}

type frontState uint8

const (
	frHead      frontState = iota // expecting a request head
	frBody                        // passing a Content-Length body (left)
	frChunkSize                   // expecting a chunk-size line
	frChunkData                   // passing chunk data (left)
	frChunkEnd                    // expecting the CRLF after chunk data
	frTrailer                     // expecting the trailer section
	frRaw                         // passing bytes unparsed (HTTP/2, upgrades)
	frTooLarge                    // feeding net/http an endless head: it answers 431
	frEOF                         // refused: end of input
)

// frontTLSConn is a frontConn over TLS; net/http takes ConnectionState to set
// Request.TLS on the requests it reads from a connection that is not a *tls.Conn.
type frontTLSConn struct {
	*frontConn
	tc *tls.Conn
}

// ConnectionState returns the TLS state of the client connection.
func (c frontTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// maxChunkLine bounds a chunk-size line with its extensions, in bytes.
const maxChunkLine = 4096

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Canonical bytes fed to net/http in place of a refused request.
const (
	refusedHead  = "REFUSED\r\n\r\n"                  // not a request line: 400
	tooLargeHead = "GET / HTTP/1.1\r\nHost: x\r\nX: " // continued without end: 431
)

// CloseWrite half-closes the client connection, so that a client still reading an
// error response net/http sends before closing gets all of it.
func (c *frontConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Read returns canonical request bytes (see frontConn).
func (c *frontConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.outPos < len(c.out) {
			n := copy(p, c.out[c.outPos:])
			if c.outPos += n; c.outPos == len(c.out) {
				c.out, c.outPos = c.out[:0], 0
			}
			return n, nil
		}
		switch c.state {
		case frEOF:
			return 0, io.EOF
		case frTooLarge:
			for i := range p {
				p[i] = 'x'
			}
			return len(p), nil
		case frRaw, frBody, frChunkData:
			return c.pass(p)
		}
		if !c.parse() {
			if err := c.fill(); err != nil {
				return 0, err
			}
		}
	}
}

// pass returns body or raw bytes: buffered ones first, then straight from the
// connection into p.
func (c *frontConn) pass(p []byte) (int, error) {
	if c.state != frRaw && int64(len(p)) > c.left {
		p = p[:c.left]
	}
	var n int
	var err error
	if c.inPos < len(c.in) {
		n = copy(p, c.in[c.inPos:])
		c.consume(n)
	} else {
		n, err = c.readClient(p)
	}
	if c.state == frRaw {
		return n, err
	}
	if c.left -= int64(n); c.left == 0 {
		if c.state == frBody {
			c.state = c.after
		} else {
			c.state = frChunkEnd
		}
	}
	return n, err
}

// frontReadHook, when set (by tests), is called after each read of a client connection that
// returned bytes, with the connection and the byte count, so a test can tell that the front
// has read what it sent.
var frontReadHook atomic.Pointer[func(net.Conn, int)]

// readClient reads the client connection into p.
func (c *frontConn) readClient(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if h := frontReadHook.Load(); h != nil {
			(*h)(c.Conn, n)
		}
	}
	return n, err
}

// fill reads more client bytes into in.
func (c *frontConn) fill() error {
	if c.inPos > 0 {
		n := copy(c.in, c.in[c.inPos:])
		c.in, c.inPos = c.in[:n], 0
	}
	if cap(c.in)-len(c.in) < 512 {
		grown := make([]byte, len(c.in), max(4096, 2*cap(c.in)))
		copy(grown, c.in)
		c.in = grown
	}
	n, err := c.readClient(c.in[len(c.in):cap(c.in)])
	c.in = c.in[:len(c.in)+n]
	if n > 0 {
		return nil // an error comes back on the next read
	}
	return err
}

func (c *frontConn) consume(n int) {
	if c.inPos += n; c.inPos == len(c.in) {
		c.in, c.inPos = c.in[:0], 0
	}
}

// parse takes the next head, chunk line or trailer section from the buffered input;
// it reports false when it needs more input.
func (c *frontConn) parse() bool {
	b := c.in[c.inPos:]
	switch c.state {
	case frHead:
		return c.parseHead(b)
	case frChunkSize:
		return c.parseChunkSize(b)
	case frChunkEnd:
		if len(b) < 2 {
			if len(b) == 1 && b[0] != '\r' {
				c.state = frEOF
				return true
			}
			return false
		}
		if b[0] != '\r' || b[1] != '\n' {
			c.state = frEOF
			return true
		}
		c.consume(2)
		c.out = append(c.out, "\r\n"...)
		c.state = frChunkSize
		return true
	case frTrailer:
		return c.parseTrailer(b)
	}
	return true
}

func (c *frontConn) parseHead(b []byte) bool {
	if !c.begun && len(b) > 0 {
		// The preface counts only as the connection's very first bytes.
		if n := min(len(b), len(h2Preface)); c.h2c && string(b[:n]) == h2Preface[:n] {
			if n < len(h2Preface) {
				return false
			}
			c.state = frRaw
		}
		c.begun = true
		if c.state == frRaw {
			return true
		}
	}
	// Empty lines before a request line are ignored (RFC 9112 §2.2).
	k := 0
	for k < len(b) && (b[k] == '\r' || b[k] == '\n') {
		k++
	}
	if k > 0 {
		c.consume(k)
		c.scan = 0
		b = b[k:]
	}
	if len(b) == 0 {
		return false
	}
	end := headEnd(b, max(c.scan-3, 0))
	switch {
	case end == -2:
		c.refuse()
		return true
	case end < 0:
		if len(b) > c.maxHead {
			c.refuseTooLarge()
			return true
		}
		c.scan = len(b)
		return false
	case end > c.maxHead:
		c.refuseTooLarge()
		return true
	}
	c.scan = 0
	c.takeHead(b[:end])
	c.consume(end)
	return true
}

// headEnd returns the index just past the CRLF CRLF that ends the head in b, searching
// from from; -1 if it is not there yet, -2 at a bare LF (RFC 9112 §2.2).
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i == 0 || b[i-1] != '\r' {
			return -2
		}
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1
		}
	}
	return -1
}

// headFacts is what takeHead learns from a head's fields.
type headFacts struct {
	clLines, teLines int
	cl               int64 // the Content-Length value, when clLines > 0
	chunked          bool  // exactly one Transfer-Encoding line, "chunked"
	upgrade, close   bool  // Connection has the "upgrade" or the "close" token
}

// takeHead validates a complete head (ending in CRLF CRLF), emits its canonical form
// and sets the state for its body.
func (c *frontConn) takeHead(head []byte) {
	head = head[:len(head)-2] // the empty line
	lineEnd := bytes.IndexByte(head, '\n')
	reqLine := head[:lineEnd-1]
	http10, ok := checkRequestLine(reqLine)
	if !ok {
		c.refuse()
		return
	}
	var f headFacts
	if !scanFields(head[lineEnd+1:], &f) {
		c.refuse()
		return
	}
	if f.teLines > 0 && (f.clLines > 0 || http10) {
		c.refuse() // RFC 9112 §6.1: ambiguous framing
		return
	}
	c.out = append(c.out, reqLine...)
	c.out = append(c.out, "\r\n"...)
	c.out = appendFields(c.out, head[lineEnd+1:], f.teLines > 0 && !f.chunked)
	c.after = frHead
	if f.upgrade {
		if !f.close {
			c.out = append(c.out, "Connection: close\r\n"...)
		}
		c.after = frRaw
	}
	switch {
	case f.teLines > 0 && !f.chunked:
		c.after = frEOF // net/http answers 501 to the coding it does not know
		c.state = frEOF
	case f.chunked:
		c.out = append(c.out, "Transfer-Encoding: chunked\r\n"...)
		c.state = frChunkSize
	case f.clLines > 0:
		c.out = append(c.out, "Content-Length: "...)
		c.out = strconv.AppendInt(c.out, f.cl, 10)
		c.out = append(c.out, "\r\n"...)
		c.state, c.left = frBody, f.cl
		if f.cl == 0 {
			c.state = c.after
		}
	default:
		c.state = c.after
	}
	c.out = append(c.out, "\r\n"...)
}

// checkRequestLine validates method SP request-target SP HTTP-version (RFC 9112 §3)
// and reports whether the version is HTTP/1.0.
func checkRequestLine(line []byte) (http10, ok bool) {
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return false, false
	}
	if !validFieldName(string(line[:sp1])) { // a method is a token (RFC 9110 §9.1)
		return false, false
	}
	for _, b := range line[sp1+1 : sp2] {
		if b <= ' ' || b == 0x7f {
			return false, false
		}
	}
	switch string(line[sp2+1:]) {
	case "HTTP/1.1":
		return false, true
	case "HTTP/1.0":
		return true, true
	}
	return false, false
}

// scanFields validates the field lines of a head or trailer section (each ending in
// CRLF) and records what decides framing in f.
func scanFields(fields []byte, f *headFacts) bool {
	for len(fields) > 0 {
		i := bytes.IndexByte(fields, '\n')
		line := fields[:i-1]
		fields = fields[i+1:]
		name, value, ok := splitField(line)
		if !ok {
			return false
		}
		switch {
		case asciiEqualFold(name, "Content-Length"):
			v, ok := parseContentLength(value)
			if !ok || (f.clLines > 0 && v != f.cl) {
				return false
			}
			f.cl = v
			f.clLines++
		case asciiEqualFold(name, "Transfer-Encoding"):
			f.teLines++
			f.chunked = f.teLines == 1 && asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			v := []string{string(value)}
			f.upgrade = f.upgrade || hasToken(v, "upgrade")
			f.close = f.close || hasToken(v, "close")
		}
	}
	return true
}

// splitField splits a field line into its name and its value without surrounding
// whitespace, refusing obs-fold, whitespace before the colon, a name that is not a
// token and control characters other than HTAB in the value (RFC 9112 §5).
func splitField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !validFieldName(string(line[:colon])) {
		return nil, nil, false
	}
	value = line[colon+1:]
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	for _, b := range value {
		if (b < ' ' && b != '\t') || b == 0x7f {
			return nil, nil, false
		}
	}
	return line[:colon], value, true
}

// appendFields appends the canonical form of validated field lines, leaving out
// Content-Length and Transfer-Encoding (takeHead writes their one canonical line)
// unless keepTE, when Transfer-Encoding lines are kept as they are.
func appendFields(out, fields []byte, keepTE bool) []byte {
	for len(fields) > 0 {
		i := bytes.IndexByte(fields, '\n')
		name, value, _ := splitField(fields[:i-1])
		fields = fields[i+1:]
		if asciiEqualFold(name, "Content-Length") || (!keepTE && asciiEqualFold(name, "Transfer-Encoding")) {
			continue
		}
		out = append(out, name...)
		out = append(out, ": "...)
		out = append(out, value...)
		out = append(out, "\r\n"...)
	}
	return out
}

// parseContentLength parses 1*DIGIT (RFC 9110 §8.6), at most 18 digits.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, true
}

func (c *frontConn) parseChunkSize(b []byte) bool {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > maxChunkLine {
			c.state = frEOF
			return true
		}
		return false
	}
	size, ok := parseChunkLine(b[:i])
	if !ok {
		c.state = frEOF
		return true
	}
	c.consume(i + 1)
	if size == 0 {
		c.state = frTrailer
		return true
	}
	c.out = strconv.AppendInt(c.out, size, 16)
	c.out = append(c.out, "\r\n"...)
	c.state, c.left = frChunkData, size
	return true
}

// parseChunkLine parses chunk-size [chunk-ext] CR (RFC 9112 §7.1.1; the LF is cut
// off): at most 15 hex digits, extensions checked for control characters and dropped.
func parseChunkLine(line []byte) (int64, bool) {
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return 0, false
	}
	line = line[:len(line)-1]
	var size int64
	j := 0
	for ; j < len(line); j++ {
		d := unhex(line[j])
		if d < 0 {
			break
		}
		if j == 15 {
			return 0, false
		}
		size = size<<4 | int64(d)
	}
	if j == 0 {
		return 0, false
	}
	ext := line[j:]
	for len(ext) > 0 && (ext[0] == ' ' || ext[0] == '\t') {
		ext = ext[1:]
	}
	if len(ext) > 0 && ext[0] != ';' {
		return 0, false
	}
	for _, b := range ext {
		if (b < ' ' && b != '\t') || b == 0x7f {
			return 0, false
		}
	}
	return size, true
}

func unhex(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	case b >= 'A' && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}

// parseTrailer takes the trailer section after the last chunk (RFC 9112 §7.1.2).
func (c *frontConn) parseTrailer(b []byte) bool {
	if len(b) >= 2 && b[0] == '\r' && b[1] == '\n' {
		c.consume(2)
		c.out = append(c.out, "0\r\n\r\n"...)
		c.state = c.after
		return true
	}
	// The section is parsed like a head whose first line is a field line.
	end := headEnd(b, max(c.scan-3, 0))
	switch {
	case end == -2 || end > c.maxHead || (end == -1 && len(b) > c.maxHead) || (len(b) > 0 && b[0] == '\n'):
		c.state = frEOF
		return true
	case end == -1:
		c.scan = len(b)
		return false
	}
	c.scan = 0
	fields := b[:end-2]
	var f headFacts
	if !scanFields(fields, &f) {
		c.state = frEOF
		return true
	}
	c.out = append(c.out, "0\r\n"...)
	c.out = appendFields(c.out, fields, true)
	c.out = append(c.out, "\r\n"...)
	c.consume(end)
	c.state = c.after
	return true
}

// refuse feeds net/http a request line it rejects with 400, then end of input.
func (c *frontConn) refuse() {
	c.out = append(c.out, refusedHead...)
	c.state = frEOF
}

// refuseTooLarge feeds net/http a head that never ends; it answers 431 at its limit.
func (c *frontConn) refuseTooLarge() {
	c.out = append(c.out, tooLargeHead...)
	c.state = frTooLarge
}

// asciiEqualFold reports whether b equals s ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

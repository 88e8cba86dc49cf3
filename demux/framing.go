package demux

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// GuardListener wraps l so that every accepted HTTP/1.x connection is checked for
// ambiguous message framing before net/http parses it. A request carrying both
// Content-Length and Transfer-Encoding, or Transfer-Encoding in HTTP/1.0, is a
// request-smuggling vector (RFC 9112 §6.1, §6.3, §11.2). Go's server would accept it
// by dropping Content-Length; behind the guard it gets 400 and the connection closes.
//
// The guard follows each connection's request heads and bodies (Content-Length and
// chunked framing) and holds a head until it is complete, at most maxHeaderBytes plus
// 4 KiB; longer heads pass unchecked so the server answers 431. maxHeaderBytes <= 0
// means DefaultMaxHeaderBytes. HTTP/2 prior-knowledge connections (RFC 9113 §3.3),
// protocol upgrades and anything it cannot follow pass through untouched.
//
// Use it with NewServer: srv.Serve(demux.GuardListener(ln, srv.MaxHeaderBytes)).
func GuardListener(l net.Listener, maxHeaderBytes int) net.Listener {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = DefaultMaxHeaderBytes
	}
	return &guardListener{Listener: l, maxHead: maxHeaderBytes + 4096}
}

type guardListener struct {
	net.Listener
	maxHead int
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, maxHead: l.maxHead}, nil
}

// framingConn states.
const (
	fsHead    = iota // collecting a request head
	fsBody           // passing Content-Length bytes (left)
	fsChunk          // inside a chunked body (see chunkState)
	fsThrough        // no longer parsing: h2c, upgrade, rejected or unparseable
)

// chunked body sub-states (RFC 9112 §7.1).
const (
	csSize    = iota // reading a chunk-size line
	csData           // passing chunk data (left)
	csDataEnd        // expecting CRLF after data
	csTrailer        // reading trailer lines until an empty one
)

// framingConn inspects inbound bytes. net/http reads from one goroutine at a time;
// the mutex only makes that assumption safe.
type framingConn struct {
	net.Conn
	maxHead int

	mu     sync.Mutex
	begun  bool // the first byte was seen
	state  int
	cs     int
	left   int64
	line   []byte // partial chunk-size or trailer line
	head   []byte // head being collected
	scan   int    // head[:scan] was searched for the head's end already
	out    []byte // checked bytes; out[outPos:] not yet returned to the server
	outPos int
	buf    []byte // read scratch
}

func (c *framingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for c.outPos == len(c.out) {
		// Fast paths: body bytes need no inspection beyond counting.
		switch {
		case c.state == fsThrough && len(c.head) == 0:
			return c.Conn.Read(p)
		case c.state == fsBody:
			n, err := c.Conn.Read(p[:min(int64(len(p)), c.left)])
			if c.left -= int64(n); c.left == 0 {
				c.state = fsHead
			}
			return n, err
		case c.state == fsChunk && c.cs == csData:
			n, err := c.Conn.Read(p[:min(int64(len(p)), c.left)])
			if c.left -= int64(n); c.left == 0 {
				c.cs = csDataEnd
			}
			return n, err
		}
		if c.buf == nil {
			c.buf = make([]byte, 4096)
		}
		n, err := c.Conn.Read(c.buf)
		if n > 0 {
			c.feed(c.buf[:n])
		}
		if c.outPos < len(c.out) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	n := copy(p, c.out[c.outPos:])
	if c.outPos += n; c.outPos == len(c.out) {
		c.out, c.outPos = c.out[:0], 0
	}
	return n, nil
}

// feed runs the framing state machine over b, moving checked bytes to out.
func (c *framingConn) feed(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case fsThrough:
			c.out = append(c.out, b...)
			return
		case fsHead:
			c.head = append(c.head, b...)
			b = nil
			// A TLS handshake record (RFC 8446 §5.1, type 22) means the guard sits
			// below TLS, where it can see nothing: stand aside.
			if !c.begun {
				c.begun = true
				if c.head[0] == 0x16 {
					c.release(len(c.head), fsThrough)
					continue
				}
			}
			// Empty lines before a request line (RFC 9112 §2.2) belong to no head.
			if k := leadingEOLs(c.head); k > 0 {
				c.release(k, fsHead)
				if len(c.head) == 0 {
					continue
				}
			}
			if isH2Preface(c.head) {
				c.release(len(c.head), fsThrough)
				continue
			}
			// Search only the new bytes (and the two before, which may start the
			// terminator): a head sent a byte at a time costs linear time.
			end := headEnd(c.head, max(c.scan-2, 0))
			if end < 0 {
				c.scan = len(c.head)
				if len(c.head) > c.maxHead {
					c.release(len(c.head), fsThrough)
				}
				continue
			}
			rest := append([]byte(nil), c.head[end:]...)
			c.head = c.head[:end]
			c.checkHead()
			b = rest
		case fsBody:
			n := min(int64(len(b)), c.left)
			c.out = append(c.out, b[:n]...)
			b = b[n:]
			if c.left -= n; c.left == 0 {
				c.state = fsHead
			}
		case fsChunk:
			b = c.feedChunk(b)
		}
	}
}

// release moves n head bytes to out and switches state.
func (c *framingConn) release(n int, next int) {
	c.out = append(c.out, c.head[:n]...)
	c.head = c.head[n:]
	c.scan = 0
	if len(c.head) == 0 {
		c.head = nil
	}
	c.state = next
}

// checkHead decides on a complete head (c.head) and releases it.
func (c *framingConn) checkHead() {
	h := c.head
	lines := headLines(h)
	reqLine := bytes.TrimSpace(lines[0])
	var cl, te bool
	var clVal int64 = -1
	var teLines int
	chunked := false
	var conn, upg []string
	for _, ln := range lines[1:] {
		name, val, ok := bytes.Cut(ln, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl = true
			if v, err := strconv.ParseInt(string(val), 10, 64); err == nil && v >= 0 {
				clVal = v
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			// net/http reads a body as chunked only for exactly one field whose
			// value is "chunked"; anything else it answers 501 and closes.
			te = true
			teLines++
			chunked = teLines == 1 && bytes.EqualFold(val, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Upgrade")):
			upg = append(upg, string(val))
		case bytes.EqualFold(name, []byte("Connection")):
			conn = append(conn, string(val))
		}
	}
	// The proxy tunnels (or answers and closes) exactly when upgradeRequested finds
	// a protocol in all the Connection and Upgrade fields; the guard must agree, or
	// it holds a tunnel's bytes back or stops following a kept-alive connection.
	upgrade := len(upgradeRequested(http.Header{"Connection": conn, "Upgrade": upg})) > 0
	http10 := bytes.HasSuffix(reqLine, []byte("HTTP/1.0"))
	if (cl && te) || (te && http10) {
		// Ambiguous framing: spoil the request line so net/http answers 400 and
		// closes, without this conn writing anything itself.
		h[0] = ' '
		c.release(len(h), fsThrough)
		return
	}
	switch {
	case upgrade:
		c.release(len(h), fsThrough) // may become a tunnel; the proxy closes otherwise
	case te && chunked:
		c.release(len(h), fsChunk)
		c.cs = csSize
	case te:
		c.release(len(h), fsThrough) // unsupported coding: net/http answers 501
	case cl && clVal > 0:
		c.release(len(h), fsBody)
		c.left = clVal
	case cl && clVal < 0:
		c.release(len(h), fsThrough) // invalid length: net/http answers 400
	default:
		c.release(len(h), fsHead)
	}
}

// feedChunk follows chunked framing over b and returns the bytes after the body.
func (c *framingConn) feedChunk(b []byte) []byte {
	for len(b) > 0 {
		switch c.cs {
		case csData:
			n := min(int64(len(b)), c.left)
			c.out = append(c.out, b[:n]...)
			b = b[n:]
			if c.left -= n; c.left == 0 {
				c.cs = csDataEnd
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.line = append(c.line, b...)
			c.out = append(c.out, b...)
			if len(c.line) > 4096 {
				c.state = fsThrough // absurd line: let net/http fail it
				c.line = nil
			}
			return nil
		}
		c.line = append(c.line, b[:i+1]...)
		c.out = append(c.out, b[:i+1]...)
		b = b[i+1:]
		line := bytes.TrimRight(c.line, "\r\n")
		c.line = c.line[:0]
		switch c.cs {
		case csSize:
			sz, _, _ := bytes.Cut(line, []byte(";"))
			v, err := strconv.ParseInt(string(bytes.TrimSpace(sz)), 16, 64)
			if err != nil || v < 0 {
				c.state = fsThrough // bad framing: net/http reports it (400)
				c.out = append(c.out, b...)
				return nil
			}
			if v == 0 {
				c.cs = csTrailer
			} else {
				c.cs, c.left = csData, v
			}
		case csDataEnd:
			if len(line) != 0 {
				c.state = fsThrough
				c.out = append(c.out, b...)
				return nil
			}
			c.cs = csSize
		case csTrailer:
			if len(line) == 0 {
				c.state = fsHead
				return b
			}
		}
	}
	return nil
}

// headLines splits a complete head into the request line and its field lines,
// unfolding obs-fold continuation lines (RFC 9112 §5.2) into the field before them as
// net/http does ("Transfer-Encoding:" CRLF SP "chunked" is chunked there), so that the
// guard reads every field the way the server will. h is not modified.
func headLines(h []byte) [][]byte {
	raw := bytes.Split(bytes.TrimRight(h, "\r\n"), []byte("\n"))
	out := make([][]byte, 0, len(raw))
	for i, ln := range raw {
		ln = bytes.TrimRight(ln, "\r")
		if i >= 2 && len(ln) > 0 && (ln[0] == ' ' || ln[0] == '\t') {
			prev := bytes.TrimRight(out[len(out)-1], " \t")
			joined := make([]byte, 0, len(prev)+1+len(ln))
			joined = append(append(append(joined, prev...), ' '), bytes.Trim(ln, " \t")...)
			out[len(out)-1] = joined
			continue
		}
		out = append(out, ln)
	}
	return out
}

// headEnd returns the index just past the first blank line ending a head in b that
// starts at or after from, or -1.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

// isH2Preface reports whether b starts like the HTTP/2 connection preface
// (RFC 9113 §3.4), which must pass untouched.
func isH2Preface(b []byte) bool {
	const pri = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	n := min(len(b), len(pri))
	return n >= 16 && string(b[:n]) == pri[:n]
}

// leadingEOLs counts leading CR and LF bytes.
func leadingEOLs(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
		n++
	}
	return n
}

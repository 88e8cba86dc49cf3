package demux

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// smuggleCase is one file of testdata/smuggling (format in its README.md).
type smuggleCase struct {
	name     string
	expect   []string // status patterns ("400", "4xx", "502|504", a "?" suffix: optional)
	close    bool     // the server must close the connection after the last response
	backend  string   // what the backend must have received: "path:body ..." or "-"
	upstream string   // "h2c" (default) or "http"
	rht      time.Duration
	segments []string // raw bytes; each is written once the front has read the ones before
}

// loadSmuggleCorpus reads every *.txt file of testdata/smuggling.
func loadSmuggleCorpus(t *testing.T) []smuggleCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "smuggling", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no smuggling corpus in testdata/smuggling")
	}
	var cases []smuggleCase
	for _, fn := range files {
		data, err := os.ReadFile(fn)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseSmuggleCase(strings.TrimSuffix(filepath.Base(fn), ".txt"), string(data))
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		cases = append(cases, c)
	}
	return cases
}

func parseSmuggleCase(name, data string) (smuggleCase, error) {
	c := smuggleCase{name: name, upstream: "h2c", backend: "-"}
	lines := strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n")
	i := 0
	sawExpect := false
	for ; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
		key, val, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(lines[i], "#")), ":")
		if !ok {
			continue // comment
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "expect":
			sawExpect = true
			for _, tok := range strings.Fields(val) {
				if tok == "close" {
					c.close = true
					continue
				}
				if c.close {
					return c, fmt.Errorf("expect: %q after close", tok)
				}
				c.expect = append(c.expect, tok)
			}
		case "backend":
			c.backend = strings.Join(strings.Fields(val), " ")
		case "upstream":
			if val != "h2c" && val != "http" {
				return c, fmt.Errorf("upstream %q is not h2c or http", val)
			}
			c.upstream = val
		case "response-header-timeout":
			d, err := time.ParseDuration(val)
			if err != nil {
				return c, err
			}
			c.rht = d
		}
	}
	if !sawExpect {
		return c, fmt.Errorf("no \"# expect:\" line")
	}
	for _, e := range c.expect {
		if strings.HasSuffix(e, "?") && !c.close {
			return c, fmt.Errorf("optional response %q needs \"close\"", e)
		}
	}
	var raw strings.Builder
	for _, ln := range lines[i:] {
		raw.WriteString(ln) // real line breaks are layout only
	}
	segs, err := unescapeSegments(raw.String())
	if err != nil {
		return c, err
	}
	c.segments = segs
	return c, nil
}

// unescapeSegments decodes \r \n \t \\ \xHH and splits at \p (a segment boundary).
func unescapeSegments(s string) ([]string, error) {
	var segs []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			cur.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("trailing backslash")
		}
		i++
		switch s[i] {
		case 'r':
			cur.WriteByte('\r')
		case 'n':
			cur.WriteByte('\n')
		case 't':
			cur.WriteByte('\t')
		case '\\':
			cur.WriteByte('\\')
		case 'p':
			segs = append(segs, cur.String())
			cur.Reset()
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("short \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape %q", s[i+1:i+3])
			}
			cur.WriteByte(byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return append(segs, cur.String()), nil
}

// statusMatches reports whether status matches a pattern: "404", "4xx", "502|504".
func statusMatches(pat string, status int) bool {
	for _, p := range strings.Split(strings.TrimSuffix(pat, "?"), "|") {
		if len(p) == 3 && strings.HasSuffix(p, "xx") {
			if status/100 == int(p[0]-'0') {
				return true
			}
		} else if strconv.Itoa(status) == p {
			return true
		}
	}
	return false
}

// matchStatuses matches got against the patterns in order; a pattern ending in "?"
// may be absent (the connection closed before it).
func matchStatuses(pats []string, got []int) bool {
	if len(pats) == 0 {
		return len(got) == 0
	}
	if len(got) > 0 && statusMatches(pats[0], got[0]) && matchStatuses(pats[1:], got[1:]) {
		return true
	}
	return strings.HasSuffix(pats[0], "?") && matchStatuses(pats[1:], got)
}

// corpusBackend answers every request with "path:body" and records it, except:
// /ws-drop (an upgrade that the upstream drops without answering: 502) and /ws-hang
// (an upgrade that the upstream never answers: 504 with a response-header timeout).
func corpusBackend(t *testing.T, h1 bool) (*backend, *requestLog) {
	log := new(requestLog)
	be := newBackend(t, 0, h1, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		body := string(b)
		if err != nil {
			body = "!err"
		}
		log.add(seenRequest{Method: r.Method, Path: r.URL.Path, Body: body, Header: r.Header.Clone()})
		switch r.URL.Path {
		case "/ws-drop":
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		case "/ws-hang":
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return
		}
		io.WriteString(w, r.URL.Path+":"+body)
	})
	return be, log
}

// runSmuggleCase sends c's bytes on one client connection to a fresh front and checks
// the responses, the connection's end and what the backend received.
func runSmuggleCase(t *testing.T, c smuggleCase, via serveVia) {
	be, blog := corpusBackend(t, c.upstream == "http")
	f := newServedFrontVia(t, Config{Upstream: c.upstream + "://" + be.addr, ResponseHeaderTimeout: c.rht}, via)
	conn := f.dial(t, 10*time.Second)
	defer conn.Close()
	reads := watchFrontReads(conn)
	defer reads.stop()
	// The writes run apart from the reads: a server that answers and closes early
	// must not block the test on a full send buffer.
	wrote := make(chan error, 1)
	go func() {
		sent := 0
		for i, s := range c.segments {
			if i > 0 {
				// The next bytes arrive as a later segment, once the front has read
				// the ones before.
				reads.await(sent, 5*time.Second)
			}
			sent += len(s)
			if _, err := io.WriteString(conn, s); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	br := bufio.NewReader(conn)
	var statuses []int
	var bodies []string
	var endErr error
	for {
		if !c.close && len(statuses) == len(c.expect) {
			break
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		r, err := readRawResponse(br)
		if err != nil {
			endErr = err
			break
		}
		statuses = append(statuses, r.status)
		bodies = append(bodies, r.body)
		if r.status/100 == 2 && !strings.HasPrefix(r.body, "/") {
			t.Errorf("response %d: 200 with body %q, not one the backend wrote", len(statuses), r.body)
		}
	}
	conn.Close()
	<-wrote
	if !matchStatuses(c.expect, statuses) {
		t.Errorf("responses %v (bodies %q), want %v; connection ended with %v", statuses, bodies, c.expect, endErr)
	}
	if c.close && (endErr == nil || isTimeout(endErr)) {
		t.Errorf("connection still open after responses %v (want it closed)", statuses)
	}
	if !c.close && endErr != nil {
		t.Errorf("connection ended early: %v (responses %v)", endErr, statuses)
	}
	if !c.close && endErr == nil && strings.Join(bodies, " ") != c.backend {
		// A legal pipeline: each answer is the backend's echo of its own request.
		t.Errorf("response bodies %q, want the backend's answers %q in order", bodies, c.backend)
	}
	if got := blog.summary(); got != c.backend {
		t.Errorf("backend received %q, want %q", got, c.backend)
	}
}

// RFC 9112 §6.1, §6.3, §11.2: every request whose
// framing is ambiguous (Content-Length with Transfer-Encoding in any order or spelling
// Go accepts, Transfer-Encoding on HTTP/1.0, obs-folded Transfer-Encoding), invalid
// (bare-LF chunk lines, chunk-size overflow, bad or differing Content-Length), or that
// follows a request after which the server can no longer follow the connection (an
// Upgrade that ends in a proxy error, a Connection value padded with a Unicode space,
// PRI split from its headers) gets a 4xx, the connection closes, and the backend
// receives nothing of it nor of what is pipelined behind it; legal pipelines are served
// in order with their bodies. Each case of testdata/smuggling runs over raw TCP against
// srv.Serve(ln) and srv.ListenAndServe(), and over crypto/tls (ALPN http/1.1) against
// srv.ServeTLS and srv.ListenAndServeTLS, with NewServer's defaults and no listener
// wrapper.
func TestSmugglingRefusedOnEveryServePath(t *testing.T) {
	cases := loadSmuggleCorpus(t)
	for _, via := range []serveVia{viaServe, viaServeTLS, viaListenAndServe, viaListenAndServeTLS} {
		t.Run(string(via), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { runSmuggleCase(t, c, via) })
			}
		})
	}
}

// The corpus parser: escapes, segments and directives.
func TestSmugglingCorpusFormat(t *testing.T) {
	c, err := parseSmuggleCase("x", "# a comment line\n# expect: 200 4xx? close\n# backend: /a:b  /c:\n"+
		"# upstream: http\n# response-header-timeout: 250ms\nGET / HTTP/1.1\\r\\n\nX: \\xc2\\xa0\\t\\\\\\r\\n\\r\\n\\pGET")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.expect, ",") != "200,4xx?" || !c.close || c.backend != "/a:b /c:" || c.upstream != "http" || c.rht != 250*time.Millisecond {
		t.Errorf("directives parsed as %+v", c)
	}
	if len(c.segments) != 2 || c.segments[0] != "GET / HTTP/1.1\r\nX: \xc2\xa0\t\\\r\n\r\n" || c.segments[1] != "GET" {
		t.Errorf("segments %q", c.segments)
	}
	for _, tc := range []struct {
		pats []string
		got  []int
		ok   bool
	}{
		{[]string{"4xx"}, []int{400}, true},
		{[]string{"4xx"}, []int{501}, false},
		{[]string{"4xx|501"}, []int{501}, true},
		{[]string{"502", "4xx?"}, []int{502}, true},
		{[]string{"502", "4xx?"}, []int{502, 400}, true},
		{[]string{"502", "4xx?"}, []int{502, 200}, false},
		{[]string{"200", "200"}, []int{200}, false},
	} {
		if matchStatuses(tc.pats, tc.got) != tc.ok {
			t.Errorf("matchStatuses(%v, %v) != %v", tc.pats, tc.got, tc.ok)
		}
	}
}

// Serving with ServeTLS keeps r.TLS, so the upstream is told
// X-Forwarded-Proto: https, over HTTP/1.1 (ALPN http/1.1) and over HTTP/2 (ALPN h2).
func TestTLSServePathForwardsProtoHTTPS(t *testing.T) {
	be, blog := corpusBackend(t, false)
	f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, true)
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: f.clientT.Clone(), Protocols: new(http.Protocols)}
			if proto == "h2" {
				tr.Protocols.SetHTTP2(true)
			} else {
				tr.Protocols.SetHTTP1(true)
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			path := "/proto-" + strings.ReplaceAll(proto, "/", "")
			resp, err := c.Get(f.url + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantProto := map[string]int{"h2": 2, "http/1.1": 1}[proto]
			if resp.StatusCode != 200 || string(b) != path+":" || resp.ProtoMajor != wantProto {
				t.Fatalf("%s %d %q, want HTTP/%d 200 %q", resp.Proto, resp.StatusCode, b, wantProto, path+":")
			}
			var seen *seenRequest
			for _, r := range blog.all() {
				if r.Path == path {
					seen = &r
				}
			}
			if seen == nil {
				t.Fatalf("backend never saw %s (saw %s)", path, blog.summary())
			}
			if got := seen.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "https" {
				t.Errorf("upstream X-Forwarded-Proto %q, want https", got)
			}
		})
	}
}

// A header block over MaxHeaderBytes is
// answered 431 and the client reads that whole response to EOF, with no connection
// reset, although the rest of its header block was never read by the server.
func TestOversizedHeaders431ReadableToEOF(t *testing.T) {
	be, blog := corpusBackend(t, false)
	f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, false)
	for i := range 3 { // a reset is a race: try a few times
		c := f.dial(t, 10*time.Second)
		go func() {
			// More than MaxHeaderBytes (64 KiB) plus net/http's slack, and never ending.
			io.WriteString(c, "GET /big-head HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 256<<10))
		}()
		all, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("try %d: reading the answer to EOF: %v after %d bytes %q", i, err, len(all), all)
		}
		resp, rerr := http.ReadResponse(bufio.NewReader(strings.NewReader(string(all))), nil)
		if rerr != nil {
			t.Fatalf("try %d: %v in %q", i, rerr, all)
		}
		b, berr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || berr != nil || !strings.Contains(string(b), "431") {
			t.Errorf("try %d: %d %q (%v), want the whole 431 response", i, resp.StatusCode, b, berr)
		}
	}
	if got := blog.summary(); got != "-" {
		t.Errorf("backend received %s", got)
	}
}

// frontReads counts the bytes the front has read from one client connection (frontReadHook),
// so a test can send its next bytes once the front has read the ones before.
type frontReads struct {
	key  string
	n    atomic.Int64
	more chan struct{} // capacity 1: n grew
}

// frontReaders holds the watched connections by the client's address, the front's
// RemoteAddr for that connection.
var frontReaders sync.Map

func init() {
	hook := func(c net.Conn, n int) {
		if v, ok := frontReaders.Load(c.RemoteAddr().String()); ok {
			r := v.(*frontReads)
			r.n.Add(int64(n))
			select {
			case r.more <- struct{}{}:
			default:
			}
		}
	}
	frontReadHook.Store(&hook)
}

// watchFrontReads starts counting what the front reads from the client connection conn.
func watchFrontReads(conn net.Conn) *frontReads {
	r := &frontReads{key: conn.LocalAddr().String(), more: make(chan struct{}, 1)}
	frontReaders.Store(r.key, r)
	return r
}

func (r *frontReads) stop() { frontReaders.Delete(r.key) }

// await returns once the front has read at least want bytes, or after limit (a front that
// refused the request stops reading; the responses then tell).
func (r *frontReads) await(want int, limit time.Duration) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for r.n.Load() < int64(want) {
		select {
		case <-r.more:
		case <-t.C:
			return
		}
	}
}

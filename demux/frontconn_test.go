package demux

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// pieceConn is a client connection that delivers data step bytes per Read.
type pieceConn struct {
	net.Conn
	data []byte
	step int
}

// RemoteAddr is a fixed address: the test hook on the front's reads (frontReadHook)
// looks connections up by it.
func (c *pieceConn) RemoteAddr() net.Addr { return pieceAddr }

var pieceAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}

func (c *pieceConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.step)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// reframe returns what net/http reads from a frontConn over in, delivered step bytes
// at a time, and read readSize bytes at a time; at most limit bytes.
func reframe(in []byte, step, readSize, limit int, h2c bool) []byte {
	c := &frontConn{Conn: &pieceConn{data: in, step: step}, maxHead: 256, h2c: h2c}
	var out []byte
	buf := make([]byte, readSize)
	for len(out) < limit {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return out
}

// What net/http reads is canonical: one CRLF per line, one framing field, chunks
// re-sized, extensions dropped; however the client's bytes are split.
func TestFrontConnCanonicalForm(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"content-length duplicates agree",
			"\r\nPOST /a HTTP/1.1\r\nHost: x\r\nContent-Length:  3 \r\ncontent-length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"chunked re-chunked",
			"POST /c HTTP/1.1\r\nHost: x\r\ntransfer-encoding: CHUNKED\r\n\r\n03;a=b\r\nabc\r\nA\r\n0123456789\r\n0\r\nT:  v\r\n\r\n",
			"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\na\r\n0123456789\r\n0\r\nT: v\r\n\r\n"},
		{"upgrade closes, then raw",
			"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nanything\n at all",
			"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nConnection: close\r\n\r\nanything\n at all"},
		{"unknown coding, then nothing",
			"POST /g HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
			"POST /g HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
		{"cl+te refused, then nothing",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
			refusedHead},
		{"obs-fold refused", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", refusedHead},
		{"bare LF refused", "GET / HTTP/1.1\nHost: x\r\n\r\n", refusedHead},
		{"space before colon refused", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", refusedHead},
		{"HTTP/2.0 request line refused", "PRI * HTTP/2.0\r\nHost: x\r\n\r\n", refusedHead},
		{"bare LF in chunk line ends input",
			"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
			"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"},
	} {
		for _, step := range []int{1, 3, 1000} {
			if got := reframe([]byte(tc.in), step, 7, 1<<20, false); string(got) != tc.want {
				t.Errorf("%s, %d-byte pieces:\ngot  %q\nwant %q", tc.name, step, got, tc.want)
			}
		}
	}
}

// The HTTP/2 preface passes untouched as a connection's first bytes, even when it
// arrives a few bytes at a time; a request line that only starts like it is parsed.
func TestFrontConnH2Preface(t *testing.T) {
	frames := h2Preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	for _, step := range []int{1, 16, 100} {
		if got := reframe([]byte(frames), step, 5, 1<<20, true); string(got) != frames {
			t.Errorf("%d-byte pieces: got %q", step, got)
		}
		got := reframe([]byte("PRI * HTTP/2.0\r\nHost: x\r\n\r\n"), step, 5, 1<<20, true)
		if string(got) != refusedHead {
			t.Errorf("%d-byte pieces, PRI with fields: got %q", step, got)
		}
	}
}

// A head longer than the limit becomes an endless head, which net/http answers 431.
func TestFrontConnHeadTooLarge(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 300) + "\r\n\r\n"
	got := reframe([]byte(in), 50, 64, 4096, false)
	if !bytes.HasPrefix(got, []byte(tooLargeHead)) || len(got) < 4096 || bytes.Contains(got[len(tooLargeHead):], []byte("\n")) {
		t.Errorf("got %q...", got[:min(len(got), 80)])
	}
}

// A client that sends its head a byte per segment costs linear time: the search for
// the head's end starts where the last one stopped.
func TestFrontConnHeadScanLinear(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 256<<10) + "\r\n\r\n"
	c := &frontConn{Conn: &pieceConn{data: []byte(head), step: 1}, maxHead: 1 << 20}
	start := time.Now()
	out, err := io.ReadAll(io.LimitReader(c, int64(len(head))))
	if err != nil || string(out) != head {
		t.Fatalf("head not passed intact (%d of %d bytes, %v)", len(out), len(head), err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a %d-byte head fed a byte at a time took %v", len(head), d)
	}
}

// FuzzFrontConn feeds arbitrary bytes, in arbitrary pieces, through the framing
// check. It must never panic, and what net/http reads must be canonical: fed through
// the check again it comes out unchanged (unless it ends in a refusal).
func FuzzFrontConn(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"), uint8(7), false)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"), uint8(1), false)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n"), uint8(5), false)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04"), uint8(3), true)
	f.Add([]byte("\r\n\r\nGET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), uint8(2), false)
	f.Add([]byte("GET / HTTP/1.1\r\nConnection: x, Upgrade\r\n\r\nraw"), uint8(4), false)
	f.Fuzz(func(t *testing.T, in []byte, step uint8, h2c bool) {
		out := reframe(in, int(step%64)+1, 13, 1<<16, h2c)
		if bytes.Contains(out, []byte(refusedHead)) || bytes.HasPrefix(out, []byte(tooLargeHead)) || len(out) >= 1<<16 {
			return
		}
		if h2c && bytes.HasPrefix(in, []byte(h2Preface)) {
			return
		}
		again := reframe(out, 11, 13, 1<<16, false)
		if !bytes.Equal(again, out) {
			t.Fatalf("not canonical:\nfirst  %q\nsecond %q", out, again)
		}
	})
}

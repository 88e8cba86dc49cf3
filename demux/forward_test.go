package demux

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// forwardPlain and ReverseProxy forward a request the same way. The same request is
// sent twice: as a plain GET, which forwardPlain takes, and with a malformed query
// parameter added, which sends it through ReverseProxy, which drops that parameter
// (so the upstream sees the same target). The upstream must receive the same
// request line and header, and the client the same response: status, header (but
// Date), framing (but that of an empty body), interim 103, body and trailers, for
// hop-by-hop fields, forwarding fields, TE, Via, and responses with trailers, of
// unknown length and event streams.
func TestForwardPlainMatchesReverseProxy(t *testing.T) {
	type seen struct {
		uri    string
		header http.Header
	}
	got := make(chan seen, 1)
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.RequestURI(), r.Header.Clone()}
		h := w.Header()
		switch r.URL.Query().Get("resp") {
		case "hints":
			h.Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			h.Set("Content-Type", "text/plain")
			h.Add("X-Multi", "1")
			h.Add("X-Multi", "2")
			io.WriteString(w, "hinted")
		case "trailers":
			h.Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			h.Set("X-Sum", "abc")
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "stream":
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			io.WriteString(w, "data: 2\n\n")
		case "status":
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusTeapot)
		default:
			h.Set("Content-Type", "application/octet-stream")
			io.WriteString(w, strings.Repeat("x", 3000))
		}
	})
	f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, false)

	exchange := func(t *testing.T, target, fields string) (seen, string) {
		t.Helper()
		c := f.dial(t, 5*time.Second)
		defer c.Close()
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: front.example\r\n%s\r\n", target, fields); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		var out strings.Builder
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			resp.Header.Del("Date")
			framing := fmt.Sprintf("te=%q cl=%d", resp.TransferEncoding, resp.ContentLength)
			if len(body) == 0 && len(resp.Trailer) == 0 {
				// ReverseProxy flushes the header of a response of unknown length from a
				// timer goroutine, which may run before or after the handler returns: an
				// empty body comes chunked or with Content-Length: 0 by timing.
				resp.Header.Del("Content-Length")
				framing = "empty"
			}
			fmt.Fprintf(&out, "%d %s %q %s trailer=%s\n", resp.StatusCode, sortedHeader(resp.Header), body,
				framing, sortedHeader(resp.Trailer))
			if resp.StatusCode >= 200 {
				break
			}
		}
		select {
		case s := <-got:
			return s, out.String()
		default:
			t.Fatal("the upstream saw no request")
			return seen{}, ""
		}
	}

	for _, resp := range []string{"plain", "hints", "trailers", "stream", "status"} {
		for i, fields := range []string{
			"",
			"User-Agent: ua\r\nX-Multi: a\r\nX-Multi: b\r\nAccept: */*\r\n",
			"Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\n" +
				"Proxy-Authorization: Basic eA==\r\nHTTP2-Settings: AAA\r\nTrailer: X-T\r\n",
			"TE: trailers\r\nX-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nForwarded: for=192.0.2.1\r\n",
			"TE: gzip, trailers;q=1\r\nVia: 1.0 other\r\n",
			"Te: deflate\r\nConnection: TE\r\nExpect: 100-continue\r\n",
		} {
			t.Run(fmt.Sprintf("%s/%d", resp, i), func(t *testing.T) {
				plainSeen, plainOut := exchange(t, "/p/q?a=1&resp="+resp, fields)
				rpSeen, rpOut := exchange(t, "/p/q?a=1&resp="+resp+"&bad=%zz", fields)
				if plainSeen.uri != rpSeen.uri {
					t.Errorf("upstream target %q via forwardPlain, %q via ReverseProxy", plainSeen.uri, rpSeen.uri)
				}
				if a, b := sortedHeader(plainSeen.header), sortedHeader(rpSeen.header); a != b {
					t.Errorf("upstream header via forwardPlain:\n%s\nvia ReverseProxy:\n%s", a, b)
				}
				if plainOut != rpOut {
					t.Errorf("client got via forwardPlain:\n%s\nvia ReverseProxy:\n%s", plainOut, rpOut)
				}
			})
		}
	}
}

// sortedHeader renders h one field per line, sorted, for comparison.
func sortedHeader(h http.Header) string {
	var lines []string
	for k, vv := range h {
		lines = append(lines, k+": "+strings.Join(vv, " | "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

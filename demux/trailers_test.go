package demux

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An HTTP/1.1 client that sends "TE: trailers" receives
// the backend's response trailers, announced in a Trailer field or not
// (http.TrailerPrefix), in a chunked response, even for a body short enough that
// net/http would otherwise send it with Content-Length. The upstream is told
// "TE: trailers" (the only TE value allowed in HTTP/2, RFC 9113 §8.2.2).
func TestTrailersReachHTTP1ClientSendingTE(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    map[string]string
	}{
		{"announced", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum, X-Count")
			io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
			w.Header().Set("X-Count", "1")
		}, map[string]string{"X-Checksum": "abc", "X-Count": "1"}},
		{"unannounced", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "body")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}, map[string]string{"X-Late": "late"}},
		{"announced-and-unannounced", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}, map[string]string{"X-Checksum": "abc", "X-Late": "late"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotTE := make(chan []string, 1)
			be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
				select {
				case gotTE <- r.Header.Values("Te"):
				default:
				}
				tc.handler(w, r)
			})
			f := newServedFront(t, Config{Upstream: "h2c://" + be.addr}, false)
			c := f.dial(t, 5*time.Second)
			defer c.Close()
			if _, err := io.WriteString(c, "GET /t HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(b) != "body" {
				t.Fatalf("response %d %q (%v)", resp.StatusCode, b, err)
			}
			if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
				t.Errorf("Transfer-Encoding %q, Content-Length %q: want a chunked response", resp.TransferEncoding, resp.Header.Get("Content-Length"))
			}
			for k, v := range tc.want {
				if got := resp.Trailer.Get(k); got != v {
					t.Errorf("trailer %s = %q, want %q (trailers %v)", k, got, v, resp.Trailer)
				}
			}
			select {
			case te := <-gotTE:
				if strings.Join(te, ",") != "trailers" {
					t.Errorf("upstream TE %q, want trailers", te)
				}
			default:
				t.Errorf("the backend never saw the request")
			}
		})
	}
}

package demux

import (
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzHeaders checks the outbound header sanitizer's invariants on arbitrary input:
// no connection-specific field survives (RFC 9113 §8.2.2), nothing named in Connection
// survives, TE is absent or exactly "trailers", every surviving name is a token and
// every value is free of CR, LF, NUL and other controls, and ordinary valid fields are
// kept untouched.
func FuzzHeaders(f *testing.F) {
	f.Add("X-App", "v", "keep-alive, X-App", "trailers", "h2c")
	f.Add("Keep-Alive", "timeout=5", "Upgrade, HTTP2-Settings", "trailers, deflate", "websocket")
	f.Add("Bad Name", "v", "", "gzip", "")
	f.Add("X-Inj", "a\r\nX-Evil: 1", "close", "", "h2c, websocket/13")
	f.Add("Proxy-Connection", "keep-alive", ",,,", "TRAILERS;q=1", "H2C")
	f.Add("Transfer-Encoding", "chunked", "te", "trailers", "")
	f.Fuzz(func(t *testing.T, name, value, conn, te, upgrade string) {
		h := http.Header{}
		h[name] = []string{value}
		h["X-Keep"] = []string{"kept"}
		if conn != "" {
			h["Connection"] = []string{conn}
		}
		if te != "" {
			h["Te"] = []string{te}
		}
		if upgrade != "" {
			h["Upgrade"] = []string{upgrade}
		}
		for _, p := range upgradeRequested(h) {
			if n, _, _ := strings.Cut(p, "/"); strings.EqualFold(n, "h2c") {
				t.Fatalf("h2c offered as an upgrade: %q", p)
			}
		}
		named := map[string]bool{}
		for _, v := range h["Connection"] {
			for _, n := range strings.Split(v, ",") {
				if n = textproto.TrimString(n); n != "" {
					named[http.CanonicalHeaderKey(n)] = true
				}
			}
		}
		sanitizeOutbound(h)
		newVia("muxpool").add(h, 1, 1)
		for k, vs := range h {
			for _, hop := range hopByHop {
				if strings.EqualFold(k, hop) {
					t.Fatalf("hop-by-hop %q survived", k)
				}
			}
			// TE is always listed in Connection by its sender (RFC 9110 §10.1.4) and
			// "TE: trailers" alone may cross into HTTP/2.
			if named[http.CanonicalHeaderKey(k)] && k != "Te" {
				t.Fatalf("%q named in Connection survived", k)
			}
			if !validFieldName(k) {
				t.Fatalf("invalid name %q survived", k)
			}
			for _, v := range vs {
				if !validFieldValue(v) {
					t.Fatalf("invalid value %q in %q survived", v, k)
				}
			}
		}
		if v, ok := h["Te"]; ok && (len(v) != 1 || v[0] != "trailers") {
			t.Fatalf("TE = %q", v)
		}
		if !named["X-Keep"] && strings.Join(h["X-Keep"], ",") != "kept" {
			t.Fatalf("ordinary field lost: %q", h["X-Keep"])
		}
	})
}

package demux

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// hopByHop lists connection-specific fields that never cross the proxy (RFC 9110
// §7.6.1, RFC 9113 §8.2.2), in canonical form. TE is handled separately: only its
// "trailers" member may be forwarded.
var hopByHop = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Transfer-Encoding",
	"Upgrade",
	"Http2-Settings",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Trailer", // announces h1 chunked trailers; net/http rebuilds it from Request.Trailer
}

// stripHopByHop removes from h every connection-specific field: the fixed list, every
// field named in Connection (RFC 9110 §7.6.1), and TE unless it asks for trailers, in
// which case TE is reduced to exactly "trailers" (RFC 9113 §8.2.2). Names match
// case-insensitively, so non-canonical map keys cannot slip through. It allocates
// only when Connection or TE is present (this runs on every request).
func stripHopByHop(h http.Header) {
	var named, te []string
	for k, vs := range h {
		switch {
		case strings.EqualFold(k, "Connection"):
			for _, v := range vs {
				for name := range strings.SplitSeq(v, ",") {
					if name = textproto.TrimString(name); name != "" {
						named = append(named, name)
					}
				}
			}
		case strings.EqualFold(k, "Te"):
			te = append(te, vs...)
		}
	}
	for k := range h {
		if isHopByHop(k) || strings.EqualFold(k, "Te") || containsFold(named, k) {
			delete(h, k)
		}
	}
	if hasToken(te, "trailers") {
		h["Te"] = []string{"trailers"}
	}
}

// isHopByHop reports whether name is in the fixed hop-by-hop list, ignoring case.
func isHopByHop(name string) bool {
	for _, n := range hopByHop {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// hasToken reports whether any comma-separated element of values equals token,
// ignoring ASCII case and parameters ("trailers;q=1" counts).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			t = textproto.TrimString(t)
			if i := strings.IndexByte(t, ';'); i >= 0 {
				t = textproto.TrimString(t[:i])
			}
			if strings.EqualFold(t, token) {
				return true
			}
		}
	}
	return false
}

// upgradeRequested returns the Upgrade protocols the client asked for, dropping "h2c":
// h2c upgrades (RFC 7540 §3.2, removed by RFC 9113) are never honoured, so a request
// offering only h2c is served as plain HTTP/1.1.
func upgradeRequested(h http.Header) []string {
	if !hasToken(h["Connection"], "upgrade") {
		return nil
	}
	var out []string
	for _, v := range h["Upgrade"] {
		for _, p := range strings.Split(v, ",") {
			p = textproto.TrimString(p)
			name, _, _ := strings.Cut(p, "/")
			if p == "" || strings.EqualFold(name, "h2c") {
				continue
			}
			out = append(out, p)
		}
	}
	return out
}

// via is this proxy's Via entries (RFC 9110 §7.6.3): received-protocol "1.1" or "2"
// (the "HTTP/" prefix is omitted as the RFC allows) followed by the pseudonym, made
// once so that adding one to a message allocates only the field's value slice.
type via struct {
	name, h11, h2 string
}

func newVia(name string) via { return via{name: name, h11: "1.1 " + name, h2: "2 " + name} }

// add appends this proxy to h's Via for a message received over HTTP/major.minor.
func (v via) add(h http.Header, major, minor int) {
	h["Via"] = []string{v.entry(h, major, minor)}
}

// entry is h's Via value with this proxy appended, for a message received over
// HTTP/major.minor: prior Via fields are joined into one list.
func (v via) entry(h http.Header, major, minor int) string {
	var entry string
	switch {
	case major == 2:
		entry = v.h2
	case major == 1 && minor == 1:
		entry = v.h11
	default:
		entry = strconv.Itoa(major) + "." + strconv.Itoa(minor) + " " + v.name
	}
	if prior := h["Via"]; len(prior) > 0 {
		entry = strings.Join(prior, ", ") + ", " + entry
	}
	return entry
}

// validFieldName reports whether name is an RFC 9110 §5.1 token.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validFieldValue reports whether v may be sent as a field value (RFC 9110 §5.5):
// no NUL, CR or LF, and no other control characters except HTAB.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// sanitizeOutbound makes h safe to send upstream: connection-specific fields removed,
// and any field whose name or value is malformed dropped. It reports whether anything
// malformed was found; the Go HTTP/1.1 server already rejects such requests with 400,
// so this is defence in depth for other front ends (HTTP/2, h2c).
func sanitizeOutbound(h http.Header) (malformed bool) {
	stripHopByHop(h)
	for name, vals := range h {
		if !validFieldName(name) {
			delete(h, name)
			malformed = true
			continue
		}
		for _, v := range vals {
			if !validFieldValue(v) {
				delete(h, name)
				malformed = true
				break
			}
		}
	}
	return malformed
}

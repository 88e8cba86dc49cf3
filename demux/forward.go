package demux

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Plain requests (GET and HEAD without a body, no upgrade, to an HTTP/2 upstream)
// are forwarded by forwardPlain rather than by httputil.ReverseProxy: the same steps
// in the same order, without the copies that ReverseProxy makes for the general case
// (a second request and URL, a second client trace composed by reflection, one slice
// per response field, a media-type parse per response). Every other request goes
// through ReverseProxy.

// plainRequest reports whether forwardPlain can take r: a GET or HEAD without a body
// or trailers, that asks for no upgrade, with a query ReverseProxy would forward
// unchanged, sent to an HTTP/2 upstream (which cannot answer 101, so no response
// needs ReverseProxy's upgrade handling).
func (p *Proxy) plainRequest(r *http.Request) bool {
	return p.mode != modeH1 &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody) && len(r.Trailer) == 0 &&
		upgradeType(r.Header) == "" && plainQuery(r.URL.RawQuery)
}

// plainQuery reports whether ReverseProxy would leave the raw query q as it is: it
// re-encodes a query that holds a ';' or a '%' not followed by two hex digits.
func plainQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || unhex(q[i+1]) < 0 || unhex(q[i+2]) < 0 {
				return false
			}
			i += 2
		}
	}
	return true
}

// forwardPlain proxies a plainRequest as ReverseProxy with the Proxy's Rewrite,
// ModifyResponse, ErrorHandler and BufferPool would, except that a failed read of the
// response body is not written to the standard logger (ReverseProxy, whose ErrorLog
// is nil, logs it there); the response is cut off the same way. in is the inbound
// request; out is ServeHTTP's copy of it, carrying the request's context, which
// becomes the outbound request: it gets its own header and URL here.
func (p *Proxy) forwardPlain(w *logWriter, in, out *http.Request, info *reqInfo) {
	out.Header = in.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	u := *in.URL
	out.URL = &u
	out.Body, out.Close = nil, false
	teTrailers := httpguts.HeaderValuesContainsToken(in.Header["Te"], "trailers")
	stripHopByHop(out.Header)
	delete(out.Header, "Te")
	if teTrailers {
		out.Header["Te"] = []string{"trailers"}
	}
	// Inbound forwarding fields are never trusted; rewrite sets them afresh.
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		delete(out.Header, k)
	}
	out = p.outbound(in, out)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // no Go default User-Agent upstream
	}

	info.relay = w
	info.trace.Got1xxResponse = info.relay1xx
	res, err := p.up.RoundTrip(out)
	info.endRelay()
	if err != nil {
		p.errorHandler(w, out, err)
		return
	}
	stripHopByHop(res.Header)
	delete(res.Header, "Te")
	if err := p.modifyResponse(res); err != nil {
		res.Body.Close()
		p.errorHandler(w, out, err)
		return
	}
	h := w.Header()
	for k, vv := range res.Header {
		if len(vv) == 0 {
			continue
		}
		k = http.CanonicalHeaderKey(k)
		// The response's values are ours: a field the writer does not have yet takes
		// them as they are. Capped, so that a later append to either header cannot
		// reach the other.
		if prior := h[k]; len(prior) > 0 {
			h[k] = append(prior[:len(prior):len(prior)], vv...)
		} else {
			h[k] = vv[:len(vv):len(vv)]
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	// As ReverseProxy: a body of unknown length and an event stream are flushed
	// after every write, and their header at once.
	flush := res.ContentLength == -1 || isEventStream(res.Header.Get("Content-Type"))
	if flush {
		w.Flush()
	}
	if err := copyBody(w, res.Body, flush); err != nil {
		res.Body.Close()
		if in.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler) // the client sees the response cut off
		}
		return
	}
	res.Body.Close() // now, to have res.Trailer
	if len(res.Trailer) > 0 {
		w.Flush() // a chunked response, so that the trailers can follow
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			for _, v := range vv {
				h.Add(k, v)
			}
		}
		return
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
}

// copyBody copies src to w in a pooled buffer, flushing after each write if flush,
// and returns the first read or write error; io.EOF ends it without error.
func copyBody(w *logWriter, src io.Reader, flush bool) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if flush {
				w.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isEventStream reports whether the media type of content type ct is
// text/event-stream (Server-Sent Events), ignoring case, spaces and parameters.
func isEventStream(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// relay1xx is the client trace's Got1xxResponse for forwardPlain: it passes an
// interim response (103 Early Hints, say) on to the client, until RoundTrip returns.
func (info *reqInfo) relay1xx(code int, header textproto.MIMEHeader) error {
	info.relayMu.Lock()
	defer info.relayMu.Unlock()
	if info.relay == nil {
		return nil // RoundTrip returned: the header map is the final response's now
	}
	h := info.relay.Header()
	for k, vv := range header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	info.relay.WriteHeader(code)
	clear(h) // WriteHeader keeps a 1xx's fields; the final response must not get them
	return nil
}

// endRelay stops relay1xx.
func (info *reqInfo) endRelay() {
	info.relayMu.Lock()
	info.relay = nil
	info.relayMu.Unlock()
}

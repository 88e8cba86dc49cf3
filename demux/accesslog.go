package demux

import (
	"log/slog"
	"net/http"
	"time"
)

// logWriter records the status and body bytes of a response for the access log, and
// bounds each write to the client by Config.WriteIdleTimeout: before a write or flush
// it sets the write deadline that far ahead, so only a write the client does not take
// can time out. It implements Flush and Unwrap so http.ResponseController (used by
// ReverseProxy for flushing, trailers and upgrades) reaches the underlying writer.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	idle   time.Duration // <= 0: writes are not bounded
}

// arm sets the write deadline for the next write.
func (w *logWriter) arm() {
	if w.idle <= 0 {
		return
	}
	if http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.idle)) != nil {
		w.idle = 0 // the writer cannot set deadlines
	}
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.arm()
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *logWriter) Flush() {
	w.arm()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequest writes the one access-log line per request: client address, Host,
// method, path, status, response body bytes, duration, the upstream target, conn id
// and the request's sequence number on that conn ("stream"; HTTP/2 stream IDs are not
// exposed by net/http), queue wait and retries.
func (p *Proxy) logRequest(r *http.Request, w *logWriter, info *reqInfo, start time.Time) {
	log := p.cfg.Logger
	if !log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	status := w.status
	if status == 0 {
		status = 499 // client went away before any response
	}
	attrs := []slog.Attr{
		slog.String("client", r.RemoteAddr),
		slog.String("host", r.Host),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("proto", r.Proto),
		slog.Int("status", status),
		slog.Int64("bytes", w.bytes),
		slog.Duration("dur", time.Since(start)),
		slog.String("target", info.target),
		slog.Uint64("upstream_conn", info.conn),
		slog.Uint64("stream", info.stream),
		slog.Duration("queue_wait", info.queueWait),
	}
	if info.retries > 0 {
		attrs = append(attrs, slog.Int("retries", info.retries))
	}
	if info.err != nil {
		attrs = append(attrs, slog.Any("err", info.err)) // the value, for handlers that inspect it
	}
	log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

package demux

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
)

// Sentinel errors. Each maps to the status in its comment when it ends a proxied request.
var (
	// ErrQueueTimeout: no upstream stream became free within Config.QueueTimeout (503).
	// It satisfies net.Error with Timeout() == true.
	ErrQueueTimeout error = &timeoutError{msg: "demux: timed out waiting for a free upstream stream"}
	// ErrQueueFull: Config.MaxQueued requests are already waiting (503).
	ErrQueueFull = errors.New("demux: upstream queue full")
	// ErrClosed: the Proxy was closed (503).
	ErrClosed = errors.New("demux: proxy closed")
	// ErrResponseHeaderTimeout: the upstream sent no response headers within
	// Config.ResponseHeaderTimeout (504). It satisfies net.Error with Timeout() == true.
	ErrResponseHeaderTimeout error = &timeoutError{msg: "demux: timed out waiting for upstream response headers"}
	// ErrUpgradeUnsupported: the client asked for a protocol upgrade (RFC 9110 §7.8),
	// such as WebSocket, that an HTTP/2 upstream cannot carry (501; see ServeHTTP).
	ErrUpgradeUnsupported = errors.New("demux: protocol upgrade not supported through an HTTP/2 upstream")
	// ErrRequestBodyTimeout: the client sent its request body slower than
	// Config.MinRequestBodyRate allows (408, and the connection closes). It satisfies
	// net.Error with Timeout() == true.
	ErrRequestBodyTimeout error = &timeoutError{msg: "demux: request body arrived too slowly"}
	// ErrConnectNotAllowed: CONNECT tunnels are not offered (405).
	ErrConnectNotAllowed = errors.New("demux: CONNECT not allowed")
)

// ConfigError reports an invalid Config field; New returns it.
type ConfigError struct {
	Field string // the Config field's name, e.g. "MaxConns"
	Err   error  // what is wrong with its value
}

// Error names the field and what is wrong with it.
func (e *ConfigError) Error() string {
	return "demux: invalid Config." + e.Field + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// DialError reports a failed upstream connection attempt (502).
type DialError struct {
	Addr string // the upstream's host:port
	Err  error  // the dial or handshake error (TLS, HTTP/2 preface)
}

// Error names the upstream address and the dial error.
func (e *DialError) Error() string { return "demux: dial upstream " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns the underlying cause.
func (e *DialError) Unwrap() error { return e.Err }

// Timeout reports whether the dial timed out.
func (e *DialError) Timeout() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// timeoutError is a net.Error whose Timeout is true.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// clientBodyError marks a failure reading the client's request body, which is the
// client's fault (400 or 413), not the upstream's.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "demux: reading request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// headerListTooLarge reports whether the upstream refused the request headers because
// they exceed its SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2), which is the
// client's doing: 431, not 502.
func headerListTooLarge(err error) bool {
	return err != nil && strings.Contains(err.Error(), "request header list larger than peer's advertised limit")
}

// statusFor maps a proxying error to the status sent to the client; 0 means the
// client is gone and nothing should be written.
func statusFor(r *http.Request, err error) int {
	var mbe *http.MaxBytesError
	var cbe *clientBodyError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrRequestBodyTimeout):
		return http.StatusRequestTimeout
	case errors.As(err, &cbe):
		return http.StatusBadRequest
	case r.Context().Err() != nil:
		return 0
	case errors.Is(err, ErrQueueTimeout), errors.Is(err, ErrQueueFull), errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	case headerListTooLarge(err):
		return http.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, ErrResponseHeaderTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

package mux

import (
	"errors"
	"fmt"
	"net"
	"os"
)

var (
	// ErrSessionClosed is returned by operations on a session that has been closed locally, and
	// by blocked stream calls when their session ends without a more specific cause.
	// errors.Is(ErrSessionClosed, net.ErrClosed) is true, so net/http and other servers treat a
	// closed *Session like a closed listener.
	ErrSessionClosed error = &closedError{"mux: session closed"}

	// ErrStreamClosed is returned by Write after CloseWrite or Close, and by Read after Close
	// (whose error says that Close stops reading and CloseWrite is the half-close; it matches
	// ErrStreamClosed with errors.Is). errors.Is(ErrStreamClosed, net.ErrClosed) is true.
	ErrStreamClosed error = &closedError{"mux: stream closed"}

	// ErrStreamReset is returned by Read and Write on a stream that either side reset (RST flag,
	// spec.md "Flag field"), including streams the peer refused and streams reset because their
	// open or close timed out (*StreamError wraps it).
	ErrStreamReset = errors.New("mux: stream reset")

	// ErrRemoteGoAway is returned by Open after the peer sent GoAway with code 0: the session
	// still carries its existing streams but the peer accepts no new ones. When the peer then
	// closes the connection (an orderly close), the session's Err, and the error of any Read
	// or Write still waiting, match it too.
	ErrRemoteGoAway = errors.New("mux: remote sent GoAway, no new streams")

	// ErrLocalGoAway is returned by Open after GoAway was called on this session.
	ErrLocalGoAway = errors.New("mux: GoAway sent, no new streams")

	// ErrKeepAliveTimeout is the session error when no frame arrived within KeepAliveTimeout
	// after a keepalive ping.
	ErrKeepAliveTimeout error = &timeoutError{"mux: keepalive timeout"}

	// ErrWriteTimeout is the session error when the connection did not accept a write within
	// Config.WriteTimeout (the peer stopped reading).
	ErrWriteTimeout error = &timeoutError{"mux: connection write timeout"}

	// ErrStreamsExhausted is returned by Open when this side has used every stream ID
	// (spec.md "StreamID field": IDs are never reused).
	ErrStreamsExhausted = errors.New("mux: stream IDs exhausted")

	// ErrMemoryBudget is returned by Open when the session's MaxSessionMemory cannot reserve
	// another stream's initial 256 KiB receive window. Incoming streams in that case are refused
	// with RST.
	ErrMemoryBudget = errors.New("mux: session memory budget exhausted")

	// ErrTimeout is returned by stream calls whose deadline passed. It satisfies net.Error with
	// Timeout() == true and matches os.ErrDeadlineExceeded with errors.Is.
	ErrTimeout error = &timeoutError{"mux: i/o timeout"}
)

// closedError is a "use of closed" error that matches net.ErrClosed.
type closedError struct{ msg string }

func (e *closedError) Error() string        { return e.msg }
func (e *closedError) Is(target error) bool { return target == net.ErrClosed }

// errReadAfterClose is Read's error on a stream this side closed. hashicorp/yamux's Close is a
// half-close after which the reply can still be read; code written for it ("write, Close,
// read the reply") fails here with this message instead of an unexplained "stream closed".
var errReadAfterClose error = &readAfterCloseError{}

// readAfterCloseError matches ErrStreamClosed and net.ErrClosed.
type readAfterCloseError struct{}

func (*readAfterCloseError) Error() string {
	return "mux: Read after Close: Close stops reading (unlike hashicorp/yamux's Close, " +
		"which only half-closes); to send FIN and still read the reply, call CloseWrite"
}

func (*readAfterCloseError) Is(target error) bool {
	return target == ErrStreamClosed || target == net.ErrClosed
}

// timeoutError is a net.Error whose Timeout method reports true.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

var _ net.Error = (*timeoutError)(nil)

// ProtocolError reports a frame from the peer that breaks the yamux protocol. The session that
// received it sends GoAway with Code and ends with this error.
type ProtocolError struct {
	Code   uint32 // GoAway code sent to the peer: GoAwayProtocolError
	Reason string // what was wrong, for humans
}

// Error describes the violation and the GoAway code sent for it.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("mux: protocol error (GoAway code %d): %s", e.Code, e.Reason)
}

func protocolErrorf(format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: GoAwayProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// GoAwayError is the session error after the peer sent GoAway with a non-zero code (spec.md
// "GoAway": 1 protocol error, 2 internal error; other codes pass through).
type GoAwayError struct {
	Code   uint32 // the code the peer sent
	Remote bool   // true: the peer sent it; false: this side sent it
}

// Error names the side that sent the GoAway and its code.
func (e *GoAwayError) Error() string {
	who := "local"
	if e.Remote {
		who = "remote"
	}
	return fmt.Sprintf("mux: %s GoAway with code %d", who, e.Code)
}

// StreamError reports why a stream was reset. errors.Is(err, ErrStreamReset) is true.
type StreamError struct {
	Remote bool   // true: the peer sent RST; false: this side reset the stream
	Reason string // why, when this side reset it (timeouts, flow-control violations, refusal)
}

// Error says who reset the stream and, for local resets, why.
func (e *StreamError) Error() string {
	if e.Remote {
		return "mux: stream reset by peer"
	}
	if e.Reason != "" {
		return "mux: stream reset: " + e.Reason
	}
	return "mux: stream reset"
}

// Is makes errors.Is(err, ErrStreamReset) hold.
func (e *StreamError) Is(target error) bool { return target == ErrStreamReset }

// Causes of local resets, kept as values so the hot path allocates nothing.
var (
	errResetByPeer      = &StreamError{Remote: true}
	errResetLocal       = &StreamError{}
	errResetOpenTimeout = &StreamError{Reason: "no ACK within StreamOpenTimeout"}
	errResetFlowControl = &StreamError{Reason: "peer sent data beyond the receive window"}
	errResetWindowWrap  = &StreamError{Reason: "peer's window updates overflowed the send window"}
	errResetAfterFIN    = &StreamError{Reason: "peer sent data after FIN"}
	errResetCloseWait   = &StreamError{Reason: "peer sent data after Close"}
	errResetCloseTimer  = &StreamError{Reason: "no FIN from the peer within StreamCloseTimeout after Close"}
)

// errClosedAfterGoAway is the session's error when the peer closed the connection after
// sending GoAway, as Session.Close does.
var errClosedAfterGoAway = fmt.Errorf("%w, then closed the connection", ErrRemoteGoAway)

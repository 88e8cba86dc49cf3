// Package mux multiplexes many bidirectional streams over one connection, speaking the yamux
// protocol version 0 (hashicorp/yamux spec.md; PROTOCOL.md in this directory restates it and
// lists every choice made where the spec is silent). It interoperates with hashicorp/yamux
// and libp2p/go-yamux peers.
//
// One side calls Client and the other Server on the two ends of a connection: a net.Conn, or
// any io.ReadWriteCloser (without deadlines, the fast paths below are off). Either side
// may Open streams and Accept the peer's. A *Stream is a net.Conn with CloseWrite (half-close)
// and Reset; a *Session is a net.Listener, so an http.Server can serve streams directly.
// A SessionServer runs a session on every connection a net.Listener accepts, with a handler
// per session, and ends them all on Close or Shutdown (GoAway, then wait for streams).
//
// What it adds over the anchors:
//   - Open never waits for the peer's ACK (0-RTT), and a stream that is never accepted or
//     never closed fails alone after its timeout, not the whole session.
//   - Per-stream receive windows auto-tune from 256 KiB up to MaxStreamWindow as the reader
//     keeps up with the round trip, and all windows together stay within MaxSessionMemory.
//   - Writes are cut into frames of at most 64 KiB sent round-robin, control frames first, so
//     one bulk stream does not starve small ones; frames are batched into vectored writes.
//   - A Read or Write that finds the connection idle does its own connection read or write,
//     so a request/response round trip costs no goroutine switches, as on a plain TCP
//     connection; a receive loop and a send loop serve everyone else.
//   - Keepalive counts any received frame as life and pings only a silent peer.
//   - A hostile peer gets a defined outcome (an RST for the stream, or GoAway with code 1 and
//     a *ProtocolError), never a panic, unbounded memory or goroutines.
//
// Errors are sentinels and types for errors.Is/As: ErrSessionClosed (every session end
// matches it), ErrStreamReset (*StreamError), ErrRemoteGoAway, ErrKeepAliveTimeout,
// *ProtocolError, *GoAwayError. Timeouts (ErrTimeout, ErrKeepAliveTimeout, ErrWriteTimeout)
// are net.Errors whose Timeout method reports true.
package mux

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
//     keeps up with the round trip, a growth staying only if it makes the stream faster (on
//     loopback it does not, and windows stay small), and all windows together stay within
//     MaxSessionMemory.
//   - Writes are cut into frames of at most 64 KiB sent round-robin, control frames first, so
//     one bulk stream does not starve small ones; frames are batched into vectored writes.
//   - A Read or Write that finds the connection idle does its own connection read or write,
//     so a request/response round trip costs no goroutine switches, as on a plain TCP
//     connection; a receive loop and a send loop serve everyone else.
//   - Keepalive counts any received frame as life and pings only a silent peer.
//   - A hostile peer gets a defined outcome (an RST for the stream, or GoAway with code 1 and
//     a *ProtocolError), never a panic, unbounded memory or goroutines.
//
// # Design
//
// The package has three layers.
//
// The core is the session's protocol state and every transition of it: the stream table, each
// stream's send and receive state (sendState, recvState: one enum per direction, with the
// transitions written next to them in streamstate.go), windows, buffers, the scheduler's queues
// and the memory budget. It is guarded by one mutex, Session.mu, and does no I/O, starts no
// goroutines and never blocks: frames come in (inbound.go: onHeaderLocked, onChunkLocked,
// onDirectLocked, onFrameEndLocked), time comes in (the timers' openTimedOut and
// closeTimedOut, and the core's clock Session.now), and state changes and frames to send come out (sched.go: fillLocked builds a
// batch of frames from the queued intents). Its wake-ups are sends on buffered channels of
// capacity one (readReady, writeDone, the loops' wake channels) that never block.
//
// The drivers are the only code that touches the connection, one for each direction, each
// held by one goroutine at a time:
//   - The connection reader (recv.go, readtoken.go) is whoever holds the read token: the
//     receive loop goroutine, a Stream.Read that finds its buffer empty and the token free,
//     which then reads frames itself until its own data arrives (a direct read), or a
//     Stream.Write whose send window is used up, which reads frames itself until a
//     WindowUpdate opens it (a window read); both only on a net.Conn. The holder owns the receiver (the bufio.Reader and the place in the current
//     frame). It is interrupted explicitly: kickReaderLocked sets the connection's read
//     deadline in the past and records it (readToken.kicked); a Read with a deadline puts its
//     deadline on the connection while it holds the token (readToken.timed).
//   - The connection writer (writer.go) is whoever holds the write token (scheduler.writing):
//     the send loop goroutine, a Stream.Write that finds the token free and writes its own
//     frames inline, a Stream.Read that finds it free and writes the window credit it freed
//     (both only on a net.Conn), or drain once the session has ended. The holder owns
//     the batch and the rest of a batch cut short (scheduler.cut). It is interrupted
//     explicitly: cutWriteLocked and kickInlineLocked move the connection's write deadline
//     and record why (scheduler.cutting, or a stream's deadline), so a cut is never mistaken
//     for a peer that stopped reading.
//
// On Linux the drivers' system calls on a TCP connection do not wait for each other in the
// kernel. A TCP socket's read and write each hold the kernel's socket lock for the whole call,
// so one that comes while the other copies sleeps there, keeping its OS thread and its P (the
// runtime's monitor takes the P back 20 µs later at the earliest). The session wraps a
// *net.TCPConn in a serialConn (serialconn_linux.go), which makes each read(2) and writev(2)
// through the socket's RawConn holding one mutex, so the driver that comes second parks in
// the runtime instead and its P runs other goroutines meanwhile. Other connections, and other
// systems, are used as they are.
//
// The API (stream.go, session.go, ping.go) calls core transitions under Session.mu and waits,
// without it, on the channels the core notifies.
//
// Goroutines: per session, the receive loop and the send loop, and the keepalive goroutine
// when EnableKeepAlive is set; they end when the session ends, and Session.Wait waits for
// them. The runtime's timers run the stream open and close timeouts, the read token's lease
// and the deadlines; each only takes Session.mu and calls the core, or closes a channel.
// Application goroutines run Read and Write and may hold a token while they do.
//
// Ownership: Session.mu guards the core: the Session fields declared from it through
// tuneProbe, and every Stream field but wmu and the deadlines. The read token's holder owns
// Session.recv; the write token's holder owns the batch and scheduler.cut. lastRecv and the
// Stats counters are atomics; conn, cfg and the IDs never change. err, mode and endedAt are
// written once, before done is closed.
//
// Lock order: Stream.wmu (which serializes Writes), then Session.mu, then the leaf locks (each
// deadline's, and rwcConn's, taken by SetWriteDeadline). serialConn's locks (its rmu or wmu,
// then sys) are leaves too: a connection read or write holds no other lock, but for the
// Stream.wmu of a Write that writes inline or reads for its window. Nobody holds Session.mu
// while reading or writing the connection, while calling user code (the Logger, RTTObserver),
// or while blocking on a channel.
//
// How a byte travels: Write(p) queues p on the stream (wbuf) and the stream on the
// scheduler's data list; if the write token is free, Write takes it and writes a batch itself,
// else the send loop does. fillLocked cuts up to 64 KiB of p per frame within the peer's
// window (sendWindow), puts its header in the batch and the payload by reference (vectored
// write) or copied, and Write returns once every byte was handed to the connection; a Write
// whose window is used up reads the connection itself for the WindowUpdate while the read
// token is free, and otherwise waits for whoever reads to hand it the window. On the
// peer, the read token's holder reads the header, onHeaderLocked admits the payload within
// the window the peer was granted (outstanding), the payload is read into a pooled chunk (or
// straight into a direct reader's p) and onChunkLocked appends it to the stream's buffer and
// wakes its Read, which copies it out and, once half the window is free, queues a
// WindowUpdate crediting it back and writes it itself if the write token is free.
//
// Errors are sentinels and types for errors.Is/As: ErrSessionClosed (every session end
// matches it), ErrStreamReset (*StreamError), ErrRemoteGoAway, ErrKeepAliveTimeout,
// *ProtocolError, *GoAwayError. Timeouts (ErrTimeout, ErrKeepAliveTimeout, ErrWriteTimeout)
// are net.Errors whose Timeout method reports true.
package mux

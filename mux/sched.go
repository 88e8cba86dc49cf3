package mux

import (
	"net"
	"sync"
	"time"
)

const (
	// maxDataFrame is the largest Data payload this side sends, in bytes. Large writes are cut
	// into frames of at most this size, so concurrent streams interleave at this grain.
	maxDataFrame = 64 << 10

	// batchBytes bounds the bytes (headers and payloads) one vectored connection write
	// carries, which bounds how long a new control frame waits behind bulk data. With many
	// busy streams, fewer, larger writes cost fewer system calls and hand-offs per byte:
	// BenchmarkMuxBulk/streams=32 on loopback moved 9-15 % more with 512 KiB than with
	// 128 KiB, and 10 % less with 64 KiB.
	batchBytes = 512 << 10

	// streamBatchFrames bounds one stream's Data frames in a batch, so a lone stream's
	// writes stay at two frames (128 KiB) and a batch grows beyond that only with other
	// streams' frames.
	streamBatchFrames = 2

	// outBytes is the capacity of a batch's out buffer, which holds the headers and the
	// payloads that are copied: those below copyBelow, or every payload on a connection
	// without vectored writes, whose batches it therefore bounds instead of batchBytes.
	outBytes = 128 << 10

	// copyBelow: payloads shorter than this are copied next to their header; longer ones are
	// handed to writev as they are (zero copy) when the connection supports it.
	copyBelow = 2048

	// unsentLimit is the TCP_NOTSENT_LOWAT set on TCP connections, in bytes: how much the
	// kernel may hold unsent, so frames queued after it are at most this far behind.
	unsentLimit = 256 << 10

	// pongBacklog bounds the Ping replies waiting to be sent; a peer that pings faster than it
	// reads loses the extra replies (the receive loop does not wait to send a pong).
	pongBacklog = 32

	// pingBacklog bounds this side's own pings waiting to be sent.
	pingBacklog = 32

	// refuseBacklog bounds the RSTs for refused streams waiting to be sent. When it is full the
	// receive loop waits for the send loop (backpressure only a peer over its limits feels).
	refuseBacklog = 1024
)

// streamList is an intrusive FIFO of streams. Membership flags live in the stream so a stream
// is queued at most once per list; entries that became idle are skipped when popped.
type streamList struct {
	head, tail *Stream
}

func (l *streamList) push(st *Stream, next func(*Stream) **Stream) {
	*next(st) = nil
	if l.tail == nil {
		l.head = st
	} else {
		*next(l.tail) = st
	}
	l.tail = st
}

func (l *streamList) pop(next func(*Stream) **Stream) *Stream {
	st := l.head
	if st == nil {
		return nil
	}
	l.head = *next(st)
	if l.head == nil {
		l.tail = nil
	}
	*next(st) = nil
	return st
}

func ctrlNext(st *Stream) **Stream { return &st.nextCtrl }
func dataNext(st *Stream) **Stream { return &st.nextData }

// scheduler is the core's outbound half: what the connection sends next. Streams and the
// connection reader record intents (flags, window credit, data to write, pongs) and wake the
// send loop. Whoever holds the write token (writing) builds frames from them (fillLocked) and
// writes the connection: the send loop, a Stream.Write writing inline, or drain (writer.go).
// Control frames go first, then data round-robin across streams, one frame per stream per
// turn; when the session ends, drain writes the pending frames and the GoAway last. Every
// field is guarded by s.mu.
type scheduler struct {
	ctrl streamList // streams with flags or window credit to send
	data streamList // streams with data and send window

	pongs           []uint32  // Ping values to echo with ACK
	pings           []uint32  // own Ping values to send with SYN
	refused         []uint32  // stream IDs to answer with RST (no Stream object)
	goAway          bool      // a GoAway is pending
	code            uint32    // its code
	stopped         bool      // the send loop has ended: intents are dropped
	broken          bool      // a connection write failed: a frame may be cut, nothing more may follow
	inline          *Stream   // the stream whose Write holds the token, writing inline
	inlineDeadline  time.Time // WriteTimeout's deadline for the inline write
	connDeadline    time.Time // the connection's write deadline as last set
	sessionDeadline time.Time // WriteTimeout's deadline of recent batches (sessionDeadlineLocked)
	cutting         bool      // the write in progress was cut short on purpose (cutWriteLocked, kickInlineLocked)
	cut             []byte    // the rest of a batch a Write gave up on: written first, by the send loop
	writing         bool      // the write token: someone is building or writing a batch
	wantToken       bool      // the send loop waits for the token: wake it when it is returned
	batch           *batch    // the token holder's scratch

	wake    chan struct{} // capacity 1: "there may be work"
	drained chan struct{} // capacity 1: refusals were taken off the queue
}

func (sc *scheduler) init() {
	sc.wake = make(chan struct{}, 1)
	sc.drained = make(chan struct{}, 1)
	sc.pongs = make([]uint32, 0, pongBacklog)
	sc.pings = make([]uint32, 0, pingBacklog)
	sc.refused = make([]uint32, 0, 16)
}

func (sc *scheduler) notify() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// queueCtrlLocked puts st on the control list and wakes the send loop. s.mu must be held.
func (sc *scheduler) queueCtrlLocked(st *Stream) {
	if sc.pushCtrlLocked(st) {
		sc.notify()
	}
}

// pushCtrlLocked is queueCtrlLocked without the wake-up. s.mu must be held.
func (sc *scheduler) pushCtrlLocked(st *Stream) bool {
	if st.inCtrl || sc.stopped {
		return false
	}
	st.inCtrl = true
	sc.ctrl.push(st, ctrlNext)
	return true
}

// queueDataLocked puts st on the data list if it has data and window, and wakes the send
// loop. s.mu must be held.
func (sc *scheduler) queueDataLocked(st *Stream) {
	if sc.pushDataLocked(st) {
		sc.notify()
	}
}

// pushDataLocked is queueDataLocked without the wake-up, for a Write about to write inline:
// the send loop is woken after that write if work is left. s.mu must be held.
func (sc *scheduler) pushDataLocked(st *Stream) bool {
	if st.inData || !st.sendable() || sc.stopped {
		return false
	}
	st.inData = true
	sc.data.push(st, dataNext)
	return true
}

// grantLocked asks for delta bytes of receive window to be credited to the peer on st. s.mu
// must be held.
func (sc *scheduler) grantLocked(st *Stream, delta uint32) {
	st.sendDelta += delta
	sc.queueCtrlLocked(st)
}

// owedLocked is grantLocked for a Read that freed the window: the credit is queued without
// waking the send loop, because the Read writes it itself once it has its bytes
// (sendCreditLocked). s.mu must be held.
func (sc *scheduler) owedLocked(st *Stream, delta uint32) {
	st.sendDelta += delta
	sc.pushCtrlLocked(st)
	st.creditOwed = true
}

// pongLocked queues a Ping reply; it reports false when the backlog is full and the reply is
// dropped. s.mu must be held.
func (sc *scheduler) pongLocked(v uint32) bool {
	if sc.stopped || len(sc.pongs) == cap(sc.pongs) {
		return false
	}
	sc.pongs = append(sc.pongs, v)
	sc.notify()
	return true
}

// pingLocked queues a Ping request; false when the backlog is full or the session stopped
// sending. s.mu must be held.
func (sc *scheduler) pingLocked(v uint32) bool {
	if sc.stopped || len(sc.pings) == cap(sc.pings) {
		return false
	}
	sc.pings = append(sc.pings, v)
	sc.notify()
	return true
}

// refuseLocked queues an RST for a stream ID this side will not open; false when the backlog
// is full. s.mu must be held.
func (sc *scheduler) refuseLocked(id uint32) bool {
	if sc.stopped {
		return true
	}
	if len(sc.refused) >= refuseBacklog {
		return false
	}
	sc.refused = append(sc.refused, id)
	sc.notify()
	return true
}

// goAwayLocked queues a GoAway frame with code; a later code replaces a pending one. s.mu
// must be held.
func (sc *scheduler) goAwayLocked(code uint32) {
	sc.goAway, sc.code = true, code
	sc.notify()
}

func (sc *scheduler) hasWorkLocked() bool {
	return len(sc.cut) > 0 || sc.goAway || len(sc.pongs) > 0 || len(sc.pings) > 0 || len(sc.refused) > 0 ||
		sc.ctrl.head != nil || sc.data.head != nil
}

// batch is the write token holder's scratch: one connection write's frames. Only the token
// holder (the send loop, an inline Write, or drain) uses it.
type batch struct {
	out      []byte      // headers, and payloads below copyBelow (or all payloads without writev); from outPool while filled
	outp     *[]byte     // the pooled buffer out came from; nil while b holds none
	iov      net.Buffers // out segments and zero-copy payloads, in wire order
	wv       net.Buffers // the copy of iov that the write consumes
	wvArr    net.Buffers // wv's backing array
	items    []sendItem  // data frames in this batch, to complete after the write
	finished []*Stream   // streams whose FIN or RST went out in this batch
	mark     int         // start of the out segment not yet in iov
	writev   bool        // the connection has a vectored write (TCP, Unix)
	size     int         // bytes in this batch, headers and payloads
	frames   uint64
	payload  uint64
}

type sendItem struct {
	st *Stream
	n  int
}

// buffersWriter is a connection with its own vectored write (serialConn), which consumes
// *bufs as net.Buffers' WriteTo does.
type buffersWriter interface {
	writeBuffers(bufs *net.Buffers) (int64, error)
}

func newBatch(conn net.Conn) *batch {
	b := &batch{}
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn, buffersWriter:
		b.writev = true
	}
	return b
}

// outPool holds the batches' out buffers (outBytes plus a header each), so an idle session
// holds none: a batch takes one when it is filled and gives it back once written.
var outPool = sync.Pool{New: func() any {
	b := make([]byte, 0, outBytes+headerSize)
	return &b
}}

// reset empties b for filling, taking an out buffer from the pool if it has none.
func (b *batch) reset() {
	if b.outp == nil {
		b.outp = outPool.Get().(*[]byte)
		b.out = *b.outp
	}
	b.out = b.out[:0]
	clear(b.iov)
	b.iov = b.iov[:0]
	clear(b.items)
	b.items = b.items[:0]
	b.finished = b.finished[:0]
	b.mark = 0
	b.size, b.frames, b.payload = 0, 0, 0
}

// giveBack returns b's out buffer to the pool once the batch is written and completed.
func (b *batch) giveBack() {
	if b.outp == nil {
		return
	}
	clear(b.iov) // iov points into out
	b.iov = b.iov[:0]
	*b.outp = b.out[:0]
	outPool.Put(b.outp)
	b.outp, b.out = nil, nil
}

func (b *batch) room() int { return cap(b.out) - len(b.out) }

func (b *batch) frame(t frameType, flags uint16, id, length uint32) {
	b.out = appendHeader(b.out, t, flags, id, length)
	b.size += headerSize
	b.frames++
}

func (b *batch) payloadBytes(p []byte) {
	b.payload += uint64(len(p))
	b.size += len(p)
	if !b.writev || len(p) < copyBelow {
		b.out = append(b.out, p...)
		return
	}
	b.iov = append(b.iov, b.out[b.mark:], p)
	b.mark = len(b.out)
}

// fillLocked moves pending intents into b, control first, until b is full. s.mu must be held.
// ctrlOnly leaves data alone (the session is ending).
func (sc *scheduler) fillLocked(b *batch, ctrlOnly bool) {
	b.reset()
	if sc.goAway && b.room() >= headerSize {
		b.frame(typeGoAway, 0, 0, sc.code)
		sc.goAway = false
	}
	sc.pongs = fillSession(b, sc.pongs, typePing, flagACK)
	sc.pings = fillSession(b, sc.pings, typePing, flagSYN)
	if len(sc.refused) > 0 {
		sc.refused = fillSession(b, sc.refused, typeWindowUpdate, flagRST)
		notify(sc.drained)
	}

	for b.room() >= headerSize {
		st := sc.ctrl.pop(ctrlNext)
		if st == nil {
			break
		}
		st.inCtrl = false
		flags := st.sendFlags
		if st.send == sendReset && flags&flagRST == 0 {
			// Reset by the peer, or our RST already went: nothing more is said about it.
			st.sendFlags, st.sendDelta = 0, 0
			continue
		}
		if flags&flagRST != 0 {
			flags &= flagRST | flagSYN | flagACK
		} else if flags&flagFIN != 0 && len(st.wbuf) > 0 {
			flags &^= flagFIN // FIN never overtakes data: it rides on the last Data frame
		}
		if flags == 0 && st.sendDelta == 0 {
			continue
		}
		b.frame(typeWindowUpdate, flags, st.id, st.sendDelta)
		st.sendFlags &^= flags
		st.sendDelta = 0
		if flags&(flagFIN|flagRST) != 0 {
			b.finished = append(b.finished, st)
		}
	}
	if ctrlOnly {
		return
	}

	// With vectored writes out holds only headers and payloads below copyBelow, and must keep
	// room for one of each; without, it holds every payload, and its capacity bounds the batch.
	limit, spare := outBytes, 0
	if b.writev {
		limit, spare = batchBytes, copyBelow
	}
	for {
		budget := limit - b.size - headerSize
		if budget <= 0 || b.room() < headerSize+spare {
			return
		}
		if st := sc.data.head; st != nil && st.inflight >= streamBatchFrames {
			return // the next stream in turn has its share of this batch
		}
		st := sc.data.pop(dataNext)
		if st == nil {
			return
		}
		st.inData = false
		if !st.sendable() {
			continue
		}
		n := min(len(st.wbuf), int(min(st.sendWindow, maxDataFrame)), budget)
		var flags uint16
		if n == len(st.wbuf) && st.sendFlags&flagFIN != 0 {
			flags = flagFIN
			st.sendFlags &^= flagFIN
			b.finished = append(b.finished, st)
		}
		b.frame(typeData, flags, st.id, uint32(n))
		b.payloadBytes(st.wbuf[:n])
		st.wbuf = st.wbuf[n:]
		st.sendWindow -= int64(n)
		st.inflight++
		b.items = append(b.items, sendItem{st, n})
		sc.queueDataLocked(st) // back of the line: round-robin
	}
}

// fillSession writes one session-level frame per value in q, as room allows, and returns what
// is left of q.
func fillSession(b *batch, q []uint32, t frameType, flags uint16) []uint32 {
	i := 0
	for ; i < len(q) && b.room() >= headerSize; i++ {
		if t == typePing {
			b.frame(t, flags, 0, q[i])
		} else {
			b.frame(t, flags, q[i], 0)
		}
	}
	n := copy(q, q[i:])
	return q[:n]
}

// completeLocked records that b's data frames were written (or failed) and wakes their
// writers. s.mu must be held.
func (sc *scheduler) completeLocked(b *batch) {
	for _, it := range b.items {
		st := it.st
		st.inflight--
		st.written += it.n
		if st.inflight == 0 {
			select {
			case st.writeDone <- struct{}{}:
			default:
			}
		}
	}
}

// write sends b's bytes on conn: one vectored write, or one plain write.
func (b *batch) write(conn net.Conn) error {
	_, err := b.writeRest(conn, nil)
	return err
}

// writeRest is write that, on an error, appends the bytes not written to rest (so a frame cut
// short can be finished by someone else) and returns it.
func (b *batch) writeRest(conn net.Conn, rest []byte) ([]byte, error) {
	if !b.writev || len(b.iov) == 0 {
		n, err := conn.Write(b.out)
		if err != nil {
			rest = append(rest, b.out[n:]...)
		}
		return rest, err
	}
	if b.mark < len(b.out) {
		b.iov = append(b.iov, b.out[b.mark:])
	}
	// The write consumes wv, so wv is rebuilt each time on a backing array kept in wvArr.
	b.wv = append(b.wvArr[:0], b.iov...)
	b.wvArr = b.wv[:0]
	var err error
	if bw, ok := conn.(buffersWriter); ok {
		_, err = bw.writeBuffers(&b.wv)
	} else {
		_, err = b.wv.WriteTo(conn)
	}
	if err != nil {
		for _, p := range b.wv {
			rest = append(rest, p...)
		}
	}
	clear(b.wvArr[:cap(b.wvArr)])
	return rest, err
}

// sendable reports whether a Data frame of st can go on the wire now. s.mu must be held.
func (st *Stream) sendable() bool {
	return len(st.wbuf) > 0 && st.sendWindow > 0 && st.send != sendReset
}

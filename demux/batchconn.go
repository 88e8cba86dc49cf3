package demux

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// batchMax is how many written bytes a batchConn holds before Write waits for the
// connection to take some: the bound on what it buffers.
const batchMax = 64 << 10

// batchCloseWait bounds how long Close waits for bytes already accepted by Write to
// reach the connection: as long as net/http's HTTP/2 client gives a TLS connection's
// Close before it closes the connection under it.
const batchCloseWait = 250 * time.Millisecond

// batchConn coalesces the writes to an upstream HTTP/2 connection: Write queues the
// bytes and returns, and one flusher goroutine writes everything queued with one
// write call, after letting the goroutines that are ready to run queue theirs
// (runtime.Gosched). net/http's HTTP/2 client flushes every request's HEADERS with a
// write of its own while holding its write lock; under load the flusher sends many
// requests' frames in one segment, which costs the kernel, the upstream's reads and
// our own read loop fewer calls per request.
//
// Writes keep their order. A write error is sticky: it is returned by every later
// Write, and the connection is closed so that its reader fails its streams too (as
// net/http's client treats any write error as fatal to the connection). Write waits
// while batchMax bytes are queued, so a peer that stops reading holds back writers as
// a plain connection would. While a write deadline is set, Write also waits until its
// own bytes were written and returns the error the write met, so the deadline bounds
// it as on a plain connection; the deadline also applies to the flusher's write in
// progress. Close waits up to batchCloseWait for queued bytes to be written, then
// closes the connection.
//
// mu guards every field; the flusher does not hold it while writing.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	cond     sync.Cond // signalled when the flusher took or wrote bytes, or stopped
	queued   []byte    // accepted by Write, not yet taken by the flusher
	spare    []byte    // the flusher's previous batch, reused for queued
	accepted uint64    // bytes accepted by Write so far
	written  uint64    // bytes the flusher has finished with (written or failed)
	flushing bool      // the flusher goroutine runs
	deadline bool      // a write deadline is set
	err      error     // the first write error, or net.ErrClosed after Close
}

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.cond.L = &b.mu
	return b
}

// Write queues p for the flusher (see batchConn).
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && len(b.queued) >= batchMax {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.queued = append(b.queued, p...)
	b.accepted += uint64(len(p))
	end := b.accepted
	if !b.flushing {
		b.flushing = true
		go b.flush()
	}
	if b.deadline {
		for b.err == nil && b.written < end {
			b.cond.Wait()
		}
		if b.written < end {
			return 0, b.err
		}
	}
	return len(p), nil
}

// flush writes queued bytes until none are left.
func (b *batchConn) flush() {
	runtime.Gosched() // let ready writers queue their frames first
	b.mu.Lock()
	for len(b.queued) > 0 && b.err == nil {
		batch := b.queued
		b.queued, b.spare = b.spare[:0], nil
		b.cond.Broadcast() // writers waiting for room
		b.mu.Unlock()
		_, err := b.Conn.Write(batch)
		b.mu.Lock()
		b.written += uint64(len(batch))
		if err != nil && b.err == nil {
			b.err = err
			b.Conn.Close()
		}
		if cap(batch) <= batchMax {
			b.spare = batch
		}
		b.cond.Broadcast()
	}
	b.flushing = false
	b.cond.Broadcast()
	b.mu.Unlock()
}

// SetWriteDeadline sets the connection's write deadline; while one is set, Write
// waits for its bytes to be written (see batchConn).
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = !t.IsZero()
	b.mu.Unlock()
	return b.Conn.SetWriteDeadline(t)
}

// SetDeadline sets the read and write deadlines.
func (b *batchConn) SetDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = !t.IsZero()
	b.mu.Unlock()
	return b.Conn.SetDeadline(t)
}

// Close waits up to batchCloseWait for queued bytes to be written, then closes the
// connection. Later Writes fail with net.ErrClosed.
func (b *batchConn) Close() error {
	b.mu.Lock()
	if b.flushing && b.err == nil {
		_ = b.Conn.SetWriteDeadline(time.Now().Add(batchCloseWait))
		for b.flushing {
			b.cond.Wait()
		}
	}
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.cond.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}

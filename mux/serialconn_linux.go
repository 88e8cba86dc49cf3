package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// A session reads its connection and writes it from two goroutines at once: the read token's
// holder and the write token's. On a TCP socket both system calls take the kernel's socket
// lock for their whole length (tcp_recvmsg and tcp_sendmsg copy under lock_sock), so a read
// that comes while a write copies a batch in sleeps in the kernel until that write ends, and
// the other way round. A goroutine that sleeps in a system call keeps its OS thread, and its P
// until the runtime's monitor takes the P back (20 µs later at the earliest): with 32 busy
// streams on two CPUs, most of the process's sleeps were such waits, and the CPU time they
// left unused kept the session well below one raw TCP connection's rate.
//
// So on Linux the session wraps a *net.TCPConn in a serialConn. Its reads and writes go
// through the socket's syscall.RawConn, so the runtime's poller still waits for readiness and
// the deadlines still apply, and each non-blocking read(2) or writev(2) is made holding one
// mutex, sys. A goroutine that finds the other direction's system call in progress waits on
// that mutex: it parks, and its thread and P run other goroutines meanwhile. sys is held for
// one system call that does not block, never while waiting for readiness, and never with
// another lock taken after it (it is a leaf lock; nobody holds Session.mu while doing I/O).

// maxIovecs is the most buffers one writev(2) takes (Linux's IOV_MAX).
const maxIovecs = 1024

// serialConn is a TCP connection whose Read, Write and writeBuffers never overlap in the
// kernel. Its other methods are the *net.TCPConn's (ReadFrom and WriteTo among them, which
// the session does not use). Safe for concurrent use, as a net.Conn is: Reads are serialized
// by rmu and writes by wmu, which guard the state of the system call in progress in each
// direction.
type serialConn struct {
	*net.TCPConn
	raw syscall.RawConn
	sys sync.Mutex // held around each read(2) and writev(2) system call, and nothing else

	rmu    sync.Mutex // serializes Read; guards the fields down to readFn
	rp     []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool // c.readOnce, made once so Read allocates nothing

	wmu     sync.Mutex // serializes Write and writeBuffers; guards the fields down to writeFn
	bufs    *net.Buffers
	wn      int64
	werr    syscall.Errno
	iov     []syscall.Iovec
	one     [1][]byte   // Write's p
	oneBufs net.Buffers // one[:], as writeBuffers takes it
	writeFn func(fd uintptr) bool
}

// serialize returns conn wrapped in a serialConn when it is a *net.TCPConn, else conn.
func serialize(conn net.Conn) net.Conn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return conn
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return conn
	}
	c := &serialConn{TCPConn: tc, raw: raw}
	c.readFn = c.readOnce
	c.writeFn = c.writeOnce
	return c
}

// Read reads into p as (*net.TCPConn).Read does: io.EOF at the end of the stream, and a
// *net.OpError for a failure, a timeout (os.ErrDeadlineExceeded) or a closed connection
// (net.ErrClosed).
func (c *serialConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.TCPConn.Read(p) // as it answers an empty read, closed or not
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rp, c.rn, c.rerr = p, 0, 0
	err := c.raw.Read(c.readFn)
	c.rp = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case c.rerr != 0:
		return 0, c.opError("read", os.NewSyscallError("read", c.rerr))
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// readOnce makes one read(2) of c.rp under sys; false asks the poller to wait for input.
func (c *serialConn) readOnce(fd uintptr) bool {
	for {
		c.sys.Lock()
		n, _, e := syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rp[0])), uintptr(len(c.rp)))
		c.sys.Unlock()
		switch e {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rerr = e
		return true
	}
}

// Write writes p, all of it or until an error, as (*net.TCPConn).Write does.
func (c *serialConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.one[0] = p
	c.oneBufs = c.one[:]
	n, err := c.writeBuffersLocked(&c.oneBufs, "write")
	c.one[0], c.oneBufs = nil, nil
	return int(n), err
}

// writeBuffers writes the buffers in *bufs with writev(2), as net.Buffers' WriteTo does on a
// *net.TCPConn (and its errors are the same, named "writev"): it consumes *bufs, so what is
// left there after an error is what was not written, and returns the bytes written.
func (c *serialConn) writeBuffers(bufs *net.Buffers) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeBuffersLocked(bufs, "writev")
}

// writeBuffersLocked writes *bufs for Write or writeBuffers, whose errors it names op. c.wmu
// must be held.
func (c *serialConn) writeBuffersLocked(bufs *net.Buffers, op string) (int64, error) {
	c.bufs, c.wn, c.werr = bufs, 0, 0
	err := c.raw.Write(c.writeFn)
	c.bufs = nil
	switch {
	case err != nil:
		return c.wn, c.opError(op, err)
	case c.werr != 0:
		return c.wn, c.opError(op, os.NewSyscallError(op, c.werr))
	}
	return c.wn, nil
}

// writeOnce writes *c.bufs with writev(2) calls under sys until all is written (true), the
// socket's buffer is full (false: the poller waits for room, then calls again) or a call
// fails (true, c.werr set).
func (c *serialConn) writeOnce(fd uintptr) bool {
	for {
		c.iov = c.iov[:0]
		for _, b := range *c.bufs {
			if len(b) == 0 {
				continue
			}
			var v syscall.Iovec
			v.Base = &b[0]
			v.SetLen(len(b))
			c.iov = append(c.iov, v)
			if len(c.iov) == maxIovecs {
				break
			}
		}
		if len(c.iov) == 0 {
			*c.bufs = (*c.bufs)[:0]
			return true
		}
		c.sys.Lock()
		n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&c.iov[0])), uintptr(len(c.iov)))
		c.sys.Unlock()
		clear(c.iov) // let the written buffers go
		switch e {
		case 0:
			c.wn += int64(n)
			consume(c.bufs, int64(n))
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.werr = e
		return true
	}
}

// consume drops the first n bytes from *bufs, as a write of them does.
func consume(bufs *net.Buffers, n int64) {
	v := *bufs
	for len(v) > 0 && (n > 0 || len(v[0]) == 0) {
		if int64(len(v[0])) > n {
			v[0] = v[0][n:]
			break
		}
		n -= int64(len(v[0]))
		v[0] = nil
		v = v[1:]
	}
	*bufs = v
}

// opError reports err as the *net.TCPConn would: a *net.OpError naming op and the addresses.
// The RawConn's own errors (a deadline, a closed connection) already are one, named
// "raw-read" or "raw-write"; only the name changes.
func (c *serialConn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

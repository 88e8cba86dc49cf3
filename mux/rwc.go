package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// rwcConn lets a session run over an io.ReadWriteCloser that is not a net.Conn (a pipe, a
// serial line, a process's stdin and stdout). Such a connection has no deadlines, so:
//   - SetReadDeadline fails, which turns direct reads off: the receive loop does all reading;
//   - the session writes only from its send loop and never cuts a write short for one
//     stream's sake (both need a write deadline that can be moved; see Session.deadlines);
//   - the write deadline the session sets for WriteTimeout is kept here, and a Write still
//     running when it passes closes the underlying connection and fails with a timeout, as a
//     net.Conn's write would. The session then ends with ErrWriteTimeout, as it would anyway.
type rwcConn struct {
	rwc io.ReadWriteCloser

	mu       sync.Mutex
	deadline time.Time   // write deadline; zero for none
	timer    *time.Timer // fires at deadline while a Write runs
	writing  bool        // a Write is in rwc.Write
	expired  bool        // the timer fired during a Write and closed rwc
}

// asConn returns conn as a net.Conn and whether it is a real one (with deadlines).
func asConn(conn io.ReadWriteCloser) (net.Conn, bool) {
	if c, ok := conn.(net.Conn); ok {
		return c, true
	}
	c := &rwcConn{rwc: conn}
	c.timer = time.AfterFunc(time.Hour, c.expire)
	c.timer.Stop()
	return c, false
}

// Read reads from the connection. Once a write timed out and closed it, the failed read says
// so (ErrWriteTimeout), so the session's error is the same whichever loop notices first.
func (c *rwcConn) Read(p []byte) (int, error) {
	n, err := c.rwc.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.expired {
			err = ErrWriteTimeout
		}
		c.mu.Unlock()
	}
	return n, err
}

// Write writes p, failing with os.ErrDeadlineExceeded (a timeout net.Error) if the write
// deadline passes first; the underlying connection is closed then, the only way to end a
// write blocked in it.
func (c *rwcConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.deadline.IsZero() {
		d := time.Until(c.deadline)
		if d <= 0 {
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		c.timer.Reset(d)
	}
	c.writing = true
	c.mu.Unlock()
	n, err := c.rwc.Write(p)
	c.mu.Lock()
	c.writing = false
	c.timer.Stop()
	if c.expired && err != nil {
		err = os.ErrDeadlineExceeded
	}
	c.mu.Unlock()
	return n, err
}

// expire closes the connection if a Write is still running at the deadline.
func (c *rwcConn) expire() {
	c.mu.Lock()
	if !c.writing {
		c.mu.Unlock()
		return
	}
	c.expired = true
	c.mu.Unlock()
	c.rwc.Close()
}

func (c *rwcConn) Close() error {
	c.timer.Stop()
	return c.rwc.Close()
}

// LocalAddr returns the connection's LocalAddr if it has one.
func (c *rwcConn) LocalAddr() net.Addr {
	if a, ok := c.rwc.(interface{ LocalAddr() net.Addr }); ok {
		return a.LocalAddr()
	}
	return rwcAddr("local")
}

// RemoteAddr returns the connection's RemoteAddr if it has one.
func (c *rwcConn) RemoteAddr() net.Addr {
	if a, ok := c.rwc.(interface{ RemoteAddr() net.Addr }); ok {
		return a.RemoteAddr()
	}
	return rwcAddr("remote")
}

func (c *rwcConn) SetDeadline(t time.Time) error { return errNoDeadlines }

func (c *rwcConn) SetReadDeadline(t time.Time) error { return errNoDeadlines }

// SetWriteDeadline records t for the next Write (Write checks it; one in progress keeps the
// deadline it started with).
func (c *rwcConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

// errNoDeadlines is SetReadDeadline's error on an io.ReadWriteCloser without deadlines.
var errNoDeadlines = &net.OpError{Op: "set deadline", Net: "mux", Err: errors.ErrUnsupported}

// rwcAddr is the address of an io.ReadWriteCloser that has none.
type rwcAddr string

func (a rwcAddr) Network() string { return "mux" }
func (a rwcAddr) String() string  { return "io.ReadWriteCloser (" + string(a) + ")" }

var _ net.Conn = (*rwcConn)(nil)

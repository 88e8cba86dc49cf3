package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/muxpool/muxpool/mux"
)

// outboxSize is how many lines may wait for one client before senders wait for it.
const outboxSize = 256

// DefaultSlowTimeout is NewServer's Server.SlowTimeout.
const DefaultSlowTimeout = 5 * time.Second

// handshakeTimeout bounds how long a new client may take to open its send stream and
// name itself.
const handshakeTimeout = 10 * time.Second

// Server is the chat server. Each TCP client gets one mux session, run by a
// mux.SessionServer: the client opens a stream to send its lines, and the server opens a
// stream to push every chat line to it.
type Server struct {
	// SlowTimeout is how long a sender waits for a client whose outbox is full before that
	// client is disconnected, so one stuck client cannot hold up the room for long. Set it
	// before Serve.
	SlowTimeout time.Duration

	sessions mux.SessionServer // runs handle on each client's session

	mu      sync.Mutex
	members map[*member]struct{}
	closed  bool
}

// member is one joined client: its name, its session, the queue its writer drains onto
// its push stream, and gone, closed when it stops being a member.
type member struct {
	name string
	sess *mux.Session
	push *mux.Stream
	out  chan string
	gone chan struct{}
}

// NewServer returns a server that is not yet serving.
func NewServer() *Server {
	s := &Server{SlowTimeout: DefaultSlowTimeout, members: make(map[*member]struct{})}
	s.sessions.Handler = s.handle
	return s
}

// Serve accepts clients on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.sessions.Serve(ln)
	if errors.Is(err, mux.ErrServerClosed) {
		return nil
	}
	return err
}

// Online returns how many clients have joined and not left.
func (s *Server) Online() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.members)
}

// Close stops accepting, disconnects every client and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for m := range s.members {
		delete(s.members, m)
		close(m.gone)
	}
	s.mu.Unlock()
	return s.sessions.Close()
}

// handle runs one client's session: handshake, then its reader; a writer goroutine
// drains the member's queue onto the push stream. The session is closed when it returns.
func (s *Server) handle(sess *mux.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	in, err := sess.AcceptStream(ctx)
	if err != nil {
		return
	}
	in.SetReadDeadline(time.Now().Add(handshakeTimeout))
	lines := bufio.NewScanner(in)
	if !lines.Scan() || validName(lines.Text()) != nil {
		in.Reset()
		return
	}
	in.SetReadDeadline(time.Time{})
	push, err := sess.Open(ctx)
	if err != nil {
		return
	}
	m := &member{name: lines.Text(), sess: sess, push: push, out: make(chan string, outboxSize), gone: make(chan struct{})}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.write(m, push)
		sess.Close() // the member is gone (left, too slow, or server closing)
	}()
	if s.join(m) {
		for lines.Scan() {
			s.broadcast(m.name + ": " + lines.Text())
		}
		if s.leave(m) {
			s.broadcast("* " + m.name + " left")
		}
	}
	<-writerDone
}

// write copies m's queued lines to its push stream until m is gone, then writes what is
// still queued (a leaving client still gets its own last lines).
func (s *Server) write(m *member, push *mux.Stream) {
	send := func(line string) bool {
		push.SetWriteDeadline(time.Now().Add(s.SlowTimeout))
		_, err := push.Write([]byte(line + "\n"))
		return err == nil
	}
	for {
		select {
		case line := <-m.out:
			if !send(line) {
				s.leave(m)
				return
			}
		case <-m.gone:
			for {
				select {
				case line := <-m.out:
					if !send(line) {
						return
					}
				default:
					return
				}
			}
		}
	}
}

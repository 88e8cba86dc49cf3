package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// join adds m, queues its welcome line first, and tells everyone (m too) that it joined.
// It reports false if the server is closing.
func (s *Server) join(m *member) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(m.gone)
		return false
	}
	s.members[m] = struct{}{}
	m.out <- fmt.Sprintf("* welcome %s, %d online", m.name, len(s.members))
	s.mu.Unlock()
	s.broadcast("* " + m.name + " joined")
	return true
}

// leave removes m and tells its writer; it reports whether m was still a member.
func (s *Server) leave(m *member) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.members[m]; !ok {
		return false
	}
	delete(s.members, m)
	close(m.gone)
	return true
}

// broadcast queues line for every member. Each sender's lines reach every member in the
// order it sent them. A member whose outbox is full makes the sender wait (and so, through
// mux flow control, slows the sending client) for up to SlowTimeout; then it is reset and dropped.
func (s *Server) broadcast(line string) {
	s.mu.Lock()
	members := make([]*member, 0, len(s.members))
	for m := range s.members {
		members = append(members, m)
	}
	s.mu.Unlock()
	for _, m := range members {
		select {
		case m.out <- line:
			continue
		default:
		}
		t := time.NewTimer(s.SlowTimeout)
		select {
		case m.out <- line:
		case <-m.gone:
		case <-t.C:
			s.leave(m)
			m.push.Reset() // its writer is stuck in Write: fail it now
		}
		t.Stop()
	}
}

// validName accepts 1 to 32 characters without spaces, colons or control characters.
func validName(name string) error {
	if name == "" || len(name) > 32 || strings.ContainsAny(name, " :\t\r\n") {
		return errors.New("chat: a name is 1-32 characters without spaces or colons")
	}
	return nil
}

package main

import (
	"errors"
	"fmt"
	"strings"
)

// join adds m, queues its welcome line first, and tells everyone (m too) that it joined.
// It reports false if the server is closing.
func (s *Server) join(m *member) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(m.out)
		return false
	}
	s.members[m] = struct{}{}
	m.out <- fmt.Sprintf("* welcome %s, %d online", m.name, len(s.members))
	s.mu.Unlock()
	s.broadcast("* " + m.name + " joined")
	return true
}

// leave removes m and ends its writer; it reports whether m was still a member.
func (s *Server) leave(m *member) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.members[m]; !ok {
		return false
	}
	delete(s.members, m)
	close(m.out)
	return true
}

// broadcast queues line for every member, in one order for all. A member whose queue is
// full is dropped.
func (s *Server) broadcast(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m := range s.members {
		select {
		case m.out <- line:
		default:
			delete(s.members, m)
			close(m.out)
		}
	}
}

// validName accepts 1 to 32 characters without spaces, colons or control characters.
func validName(name string) error {
	if name == "" || len(name) > 32 || strings.ContainsAny(name, " :\t\r\n") {
		return errors.New("chat: a name is 1-32 characters without spaces or colons")
	}
	return nil
}

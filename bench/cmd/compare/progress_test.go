package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a strings.Builder safe for the progress goroutine and the
// test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressDrawsAndErases(t *testing.T) {
	var buf syncBuffer
	p := startProgress(&buf, false, 0, time.Millisecond)
	var done atomic.Int64
	done.Store(7)
	p.begin("[1/2] http/h1x6", 10, &done)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "7/10 requests") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line after 10s: %q", buf.String())
		}
		time.Sleep(time.Millisecond)
	}
	p.stop()
	p.stop() // idempotent
	if out := buf.String(); !strings.HasSuffix(out, "\r") || !strings.Contains(out, "[1/2] http/h1x6") {
		t.Fatalf("progress not erased at stop: %q", out)
	}
}

func TestProgressQuiet(t *testing.T) {
	var buf syncBuffer
	p := startProgress(&buf, true, 0, time.Millisecond)
	var done atomic.Int64
	p.begin("x", 1, &done)
	time.Sleep(20 * time.Millisecond)
	p.stop()
	if buf.String() != "" {
		t.Fatalf("quiet progress wrote %q", buf.String())
	}
}

package main

import (
	"os"
	"path/filepath"
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
	p := startProgress(&buf, false, true, 0, time.Millisecond)
	var done atomic.Int64
	done.Store(7)
	// A label longer than the 70 columns drawn at least.
	p.begin("[1/2] http/h1x6 "+strings.Repeat("x", 70), 10, &done)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "7/10 requests") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line after 10s: %q", buf.String())
		}
		time.Sleep(time.Millisecond)
	}
	p.stop()
	p.stop() // idempotent
	out := buf.String()
	if !strings.HasSuffix(out, "\r") || !strings.Contains(out, "[1/2] http/h1x6") {
		t.Fatalf("progress not erased at stop: %q", out)
	}
	// Every redraw, and the erasure, covers the longest line drawn.
	draws := strings.Split(strings.TrimSuffix(out, "\r"), "\r")[1:]
	longest := 0
	for _, d := range draws {
		longest = max(longest, len(d))
		if len(d) < longest || (strings.TrimSpace(d) == "" && len(d) != longest) {
			t.Fatalf("redraw %q shorter than the longest line before it (%d): %q", d, longest, out)
		}
	}
}

// TestProgressQuiet: -q writes nothing, on a terminal or not.
func TestProgressQuiet(t *testing.T) {
	for _, terminal := range []bool{true, false} {
		var buf syncBuffer
		p := startProgress(&buf, true, terminal, 0, time.Millisecond)
		var done atomic.Int64
		p.begin("x", 1, &done)
		time.Sleep(20 * time.Millisecond)
		p.stop()
		if buf.String() != "" {
			t.Fatalf("quiet progress (terminal %v) wrote %q", terminal, buf.String())
		}
	}
}

// TestProgressNotTerminal: with stderr redirected to a file there are no \r
// redraws, only one plain line per finished step.
func TestProgressNotTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&syncBuffer{}) {
		t.Fatal("a regular file or a buffer taken for a terminal")
	}
	p := newProgress(f, false)
	var one, two atomic.Int64
	p.begin("[1/2] http/h1x6", 10, &one)
	one.Store(10)
	p.begin("[2/2] http/h2x1", 10, &two)
	two.Store(4) // stopped early, e.g. interrupted
	p.stop()
	p.stop() // idempotent: no second line
	raw, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := string(raw)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if strings.Contains(out, "\r") || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "[1/2] http/h1x6  10/10 requests") ||
		!strings.HasPrefix(lines[1], "[2/2] http/h2x1  4/10 requests") {
		t.Fatalf("want two plain lines, one per step, got %q", out)
	}
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestRunDemo runs the command's demo and checks it reports full delivery.
func TestRunDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-clients", "3", "-messages", "4"}, strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "every client received all 12 messages") {
		t.Errorf("demo output lacks the delivery line:\n%s", out.String())
	}
	if n := strings.Count(out.String(), "[user2] user3: message 4"); n != 1 {
		t.Errorf("user2 saw user3's 4th message %d times, want 1", n)
	}
}

// TestRunInteractive joins a server with -join, sends stdin's lines and prints them back.
func TestRunInteractive(t *testing.T) {
	_, addr := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-join", addr, "-name", "zoe"}, strings.NewReader("hi\nbye\n"), &out, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	want := "* welcome zoe, 1 online\n* zoe joined\nzoe: hi\nzoe: bye\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

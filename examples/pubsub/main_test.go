package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestRunDemo runs the command's demo and checks every subscription's count.
func TestRunDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-messages", "8"}, strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"[sub1/news] end after 8 messages", "[sub2/sports] end after 8 messages",
		"[sub3/news] end after 8 messages", "[sub3/sports] end after 8 messages", "published=16 delivered=32 dropped=0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunPublisherToSubscriber runs -sub and -pub against a broker.
func TestRunPublisherToSubscriber(t *testing.T) {
	b, addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var subOut bytes.Buffer
	subDone := make(chan error, 1)
	go func() { subDone <- run(ctx, []string{"-sub", addr, "-topics", "a,b"}, nil, &subOut, io.Discard) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		n := len(b.topics)
		b.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("subscriber did not subscribe")
		}
	}
	if err := run(ctx, []string{"-pub", addr}, strings.NewReader("a x\nc y\nb z\n"), io.Discard, io.Discard); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	b.Close()
	if err := <-subDone; err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	lines := strings.Fields(strings.ReplaceAll(subOut.String(), " ", "_"))
	if len(lines) != 2 || !strings.Contains(subOut.String(), "a x\n") || !strings.Contains(subOut.String(), "b z\n") {
		t.Errorf("subscriber printed %q, want the a and b lines only", subOut.String())
	}
}

package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer serves a chat server, adjusted by configure, on a loopback port until the
// test ends.
func startServer(t *testing.T, configure ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer()
	for _, f := range configure {
		f(srv)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// TestPushToAll joins three clients, has each send 50 lines concurrently, and checks
// that every client receives every line exactly once, in order per sender.
func TestPushToAll(t *testing.T) {
	srv, addr := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const clients, msgs = 3, 50
	var cs []*Client
	for i := range clients {
		c, err := Join(ctx, addr, fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if want := fmt.Sprintf("* welcome c%d, %d online", i, i+1); c.Welcome != want {
			t.Errorf("welcome %q, want %q", c.Welcome, want)
		}
		cs = append(cs, c)
	}
	if n := srv.Online(); n != clients {
		t.Fatalf("Online() = %d, want %d", n, clients)
	}

	received := make([][]string, clients) // chat lines each client got, in arrival order
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for k := range msgs {
				if err := c.Send(fmt.Sprintf("m%d", k)); err != nil {
					t.Errorf("%s send: %v", c.Name, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for len(received[i]) < clients*msgs {
				line, err := c.Next()
				if err != nil {
					t.Errorf("%s: got %d lines, then %v", c.Name, len(received[i]), err)
					return
				}
				if !strings.HasPrefix(line, "* ") {
					received[i] = append(received[i], line)
				}
			}
		}()
	}
	stop := context.AfterFunc(ctx, func() { // a lost line must fail the test, not hang it
		for _, c := range cs {
			c.Close()
		}
	})
	wg.Wait()
	stop()

	for i, lines := range received {
		next := make(map[string]int) // sender -> next expected message number
		for _, line := range lines {
			from, msg, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("client %d: malformed line %q", i, line)
			}
			if want := fmt.Sprintf("m%d", next[from]); msg != want {
				t.Fatalf("client %d: from %s got %q, want %q (out of order or duplicated)", i, from, msg, want)
			}
			next[from]++
		}
		for _, c := range cs {
			if next[c.Name] != msgs {
				t.Errorf("client %d got %d lines from %s, want %d", i, next[c.Name], c.Name, msgs)
			}
		}
	}
}

// TestLeaveIsAnnounced checks that the others hear when a client leaves, and that the
// server forgets it.
func TestLeaveIsAnnounced(t *testing.T) {
	srv, addr := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := Join(ctx, addr, "ann")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Join(ctx, addr, "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Leave()
	context.AfterFunc(ctx, func() { a.Close() })
	for _, want := range []string{"* ann joined", "* bob joined", "* bob left"} {
		if got, err := a.Next(); got != want || err != nil {
			t.Fatalf("ann got %q, %v; want %q", got, err, want)
		}
	}
	if n := srv.Online(); n != 1 {
		t.Errorf("Online() = %d after a leave, want 1", n)
	}
}

// TestStuckClientDropped: a client that stops reading holds senders back for SlowTimeout,
// then is disconnected; the others keep getting every line in order.
func TestStuckClientDropped(t *testing.T) {
	srv, addr := startServer(t, func(s *Server) { s.SlowTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reader, err := Join(ctx, addr, "reader")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	stuck, err := Join(ctx, addr, "stuck")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	context.AfterFunc(ctx, func() { reader.Close() })
	const n = 3000 // ~3 MB: more than the stuck client's stream window plus its outbox
	pad := strings.Repeat("x", 1000)
	errc := make(chan error, 1)
	go func() {
		for k := range n {
			if err := reader.Send(fmt.Sprintf("%d %s", k, pad)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for k := 0; k < n; {
		line, err := reader.Next()
		if err != nil {
			t.Fatalf("reader got %d of %d lines, then %v", k, n, err)
		}
		if strings.HasPrefix(line, "* ") {
			continue
		}
		if want := fmt.Sprintf("reader: %d %s", k, pad); line != want {
			t.Fatalf("line %d: got %.30q", k, line)
		}
		k++
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := srv.Online(); n != 1 {
		t.Errorf("Online() = %d, want 1 after the stuck client was dropped", n)
	}
	got := 0
	for ; ; got++ {
		if _, err = stuck.Next(); err != nil {
			break
		}
	}
	if got >= n {
		t.Errorf("stuck client read all %d lines; want it cut off", got)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// runDemo starts a server and n clients in this process; each client sends m lines and
// prints what the server pushes to it. It returns once every client has received every
// line, or with ctx's error.
func runDemo(ctx context.Context, n, m int, stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := NewServer()
	go srv.Serve(ln)
	defer srv.Close()
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, format+"\n", args...)
	}
	say("chat server on %s; %d clients send %d messages each", ln.Addr(), n, m)

	var cs []*Client
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for i := range n {
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := Join(jctx, ln.Addr().String(), fmt.Sprintf("user%d", i+1))
		cancel()
		if err != nil {
			return err
		}
		say("[%s] %s", c.Name, c.Welcome)
		cs = append(cs, c)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for _, c := range cs {
		wg.Add(2)
		go func() { // receive: every client must see n*m chat lines
			defer wg.Done()
			for got := 0; got < n*m; {
				line, err := c.Next()
				if err != nil {
					errs <- fmt.Errorf("%s: %w", c.Name, err)
					return
				}
				if !strings.HasPrefix(line, "* ") {
					got++
				}
				say("[%s] %s", c.Name, line)
			}
		}()
		go func() {
			defer wg.Done()
			for i := range m {
				if err := c.Send(fmt.Sprintf("message %d", i+1)); err != nil {
					errs <- fmt.Errorf("%s: %w", c.Name, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range cs {
			c.Close() // unblocks the receivers
		}
		<-done
		return ctx.Err()
	}
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	say("every client received all %d messages", n*m)
	return nil
}

// Command chat shows the push pattern on mux: a server accepts TCP clients, one mux
// session each; every client opens a stream to send its lines, and the server opens a
// stream per client to push every line to all connected clients as it arrives.
//
// With no flags it runs a demo in one process (a server and three clients that chat,
// then stop):
//
//	go run ./examples/chat
//	go run ./examples/chat -clients 5 -messages 10
//
// Or run a server and join it from other terminals (type lines; Ctrl-C to stop):
//
//	go run ./examples/chat -serve 127.0.0.1:7000
//	go run ./examples/chat -join 127.0.0.1:7000 -name alice
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run parses args and runs the demo, a server (-serve) or an interactive client (-join)
// until it finishes or ctx ends.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.String("serve", "", "run only the server, on this address (e.g. 127.0.0.1:7000)")
	join := fs.String("join", "", "join the server at this address; stdin lines are sent")
	name := fs.String("name", "guest", "your name with -join")
	clients := fs.Int("clients", 3, "demo: number of clients")
	messages := fs.Int("messages", 3, "demo: messages each client sends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *serve != "":
		return runServer(ctx, *serve, stdout)
	case *join != "":
		return runClient(ctx, *join, *name, stdin, stdout)
	case *clients < 1 || *messages < 0:
		return errors.New("-clients must be at least 1 and -messages not negative")
	}
	return runDemo(ctx, *clients, *messages, stdout)
}

// runServer serves on addr until ctx ends.
func runServer(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := NewServer()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "chat server on %s\n", ln.Addr())
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	srv.Close()
	fmt.Fprintln(stdout, "chat server stopped")
	return err
}

// runClient joins addr as name, sends stdin's lines and prints pushed lines until stdin
// ends, the server goes away or ctx ends.
func runClient(ctx context.Context, addr, name string, stdin io.Reader, stdout io.Writer) error {
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := Join(jctx, addr, name)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, c.Welcome)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			line, err := c.Next()
			if err != nil {
				return
			}
			fmt.Fprintln(stdout, line)
		}
	}()
	sendDone := make(chan struct{})
	go func() { // may stay blocked on a terminal's stdin until the process exits
		defer close(sendDone)
		lines := bufio.NewScanner(stdin)
		for lines.Scan() {
			if c.Send(lines.Text()) != nil {
				return
			}
		}
		c.Leave()
	}()
	select {
	case <-ctx.Done():
	case <-recvDone:
	}
	c.Close()
	<-recvDone
	return nil
}

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

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
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
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

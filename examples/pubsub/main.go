// Command pubsub shows publish/subscribe fan-out over mux: a small broker where
// publishers and subscribers connect over TCP with one mux session each. A subscriber
// opens one stream per topic; publishers send "topic message" lines; the broker copies
// each line to every subscriber stream of its topic, in publication order.
//
// With no flags it runs a demo in one process (a broker, three subscribers on two
// topics, two publishers), then stops:
//
//	go run ./examples/pubsub
//	go run ./examples/pubsub -messages 20
//
// Or run the pieces apart (Ctrl-C to stop):
//
//	go run ./examples/pubsub -serve 127.0.0.1:7001
//	go run ./examples/pubsub -sub 127.0.0.1:7001 -topics news,sports
//	go run ./examples/pubsub -pub 127.0.0.1:7001     # then type lines: news hello
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
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "pubsub:", err)
		os.Exit(1)
	}
}

// run parses args and runs the demo, a broker (-serve), a subscriber (-sub) or a
// publisher of stdin's lines (-pub) until it finishes or ctx ends.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pubsub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.String("serve", "", "run only the broker, on this address (e.g. 127.0.0.1:7001)")
	sub := fs.String("sub", "", "subscribe at this broker address to -topics and print messages")
	topics := fs.String("topics", "news", "with -sub: comma-separated topics")
	pub := fs.String("pub", "", "publish stdin's \"topic message\" lines to the broker at this address")
	messages := fs.Int("messages", 6, "demo: messages each publisher sends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *serve != "":
		return runBroker(ctx, *serve, stdout)
	case *sub != "":
		return runSubscriber(ctx, *sub, strings.Split(*topics, ","), stdout)
	case *pub != "":
		return runPublisher(ctx, *pub, stdin)
	case *messages < 0:
		return errors.New("-messages must not be negative")
	}
	return runDemo(ctx, *messages, stdout)
}

// runBroker serves on addr until ctx ends.
func runBroker(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	b := NewBroker()
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(ln) }()
	fmt.Fprintf(stdout, "broker on %s\n", ln.Addr())
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	b.Close()
	st := b.Stats()
	fmt.Fprintf(stdout, "broker stopped: published=%d delivered=%d dropped=%d\n", st.Published, st.Delivered, st.Dropped)
	return err
}

// runSubscriber subscribes to topics on one session and prints every message until the
// broker ends the subscriptions or ctx ends.
func runSubscriber(ctx context.Context, addr string, topics []string, stdout io.Writer) error {
	c, err := Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, topic := range topics {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := c.Subscribe(sctx, topic)
		cancel()
		if err != nil {
			return err
		}
		wg.Go(func() {
			for line, err := s.Next(); err == nil; line, err = s.Next() {
				mu.Lock()
				fmt.Fprintln(stdout, line)
				mu.Unlock()
			}
		})
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	wg.Wait()
	return nil
}

// runPublisher publishes stdin's "topic message" lines until stdin ends or ctx ends.
func runPublisher(ctx context.Context, addr string, stdin io.Reader) error {
	c, err := Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.Publisher(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	lines := bufio.NewScanner(stdin) // a terminal's stdin may keep this blocked until exit
	for lines.Scan() {
		topic, msg, _ := strings.Cut(lines.Text(), " ")
		if err := p.Publish(topic, msg); err != nil {
			return err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.Close(cctx)
}

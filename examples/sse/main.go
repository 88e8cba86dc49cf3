// Command sse shows server-sent events through the demux proxy: a backend emits a
// text/event-stream over h2c, one event every interval, and HTTP/1.1 clients receive
// each event through the proxy as soon as it is emitted (the proxy flushes every
// event; nothing is buffered). Every client's stream is one HTTP/2 stream on the
// proxy's single upstream connection.
//
// With no flags it starts the backend and the proxy on loopback, has two clients
// receive ten events each, prints them with their delay, and stops:
//
//	go run ./examples/sse
//	go run ./examples/sse -clients 5 -n 20 -interval 50ms
//
// Or keep serving (Ctrl-C to stop) and watch with curl:
//
//	go run ./examples/sse -serve -listen 127.0.0.1:8082
//	curl -N 'http://127.0.0.1:8082/events?n=100&interval=500ms'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/muxpool/muxpool/internal/h2cstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "sse:", err)
		os.Exit(1)
	}
}

// run parses args, starts the backend and the proxy, and runs the demo clients (or,
// with -serve, serves until ctx ends).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "proxy address for HTTP/1.1 clients")
	backendAddr := fs.String("backend", "127.0.0.1:0", "event backend address (h2c)")
	n := fs.Int("n", 10, "demo: events per client")
	interval := fs.Duration("interval", 100*time.Millisecond, "demo: time between events")
	clients := fs.Int("clients", 2, "demo: concurrent clients")
	serve := fs.Bool("serve", false, "serve until interrupted instead of running the demo")
	verbose := fs.Bool("v", false, "print the proxy's access log on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > maxEvents || *interval < minInterval || *interval > maxInterval || *clients < 1 {
		return errors.New("want 1 <= -n <= 10000, 1ms <= -interval <= 1m, -clients >= 1")
	}
	done := make(chan struct{})
	var logw io.Writer
	if *verbose {
		logw = stderr
	}
	st, err := h2cstack.Start(&Events{Done: done}, *backendAddr, *listen, logw)
	if err != nil {
		return err
	}
	defer func() {
		close(done) // end open event streams so shutdown does not wait for them
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st.Close(sctx)
	}()
	fmt.Fprintf(stdout, "event backend (h2c) on %s, demux proxy for HTTP/1.1 clients on %s\n", st.Backend, st.URL)
	if *serve {
		fmt.Fprintf(stdout, "try: curl -N '%s/events?n=100&interval=500ms'\n", st.URL)
		<-ctx.Done()
		return nil
	}
	return demo(ctx, st.URL, *clients, *n, *interval, stdout)
}

// demo runs clients that each receive n events and print them with their delay.
func demo(ctx context.Context, base string, clients, n int, interval time.Duration, stdout io.Writer) error {
	c := http1Client()
	defer c.CloseIdleConnections()
	url := fmt.Sprintf("%s/events?n=%d&interval=%s", base, n, interval)
	var mu sync.Mutex
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for k := range clients {
		wg.Go(func() {
			got := 0
			errs[k] = subscribe(ctx, c, url, "", func(ev Event) bool {
				var data struct{ Sent time.Time }
				json.Unmarshal([]byte(ev.Data), &data)
				got++
				mu.Lock()
				fmt.Fprintf(stdout, "[client %d] id=%s event=%s delay=%s\n", k+1, ev.ID, ev.Type, ev.Received.Sub(data.Sent).Round(time.Microsecond))
				mu.Unlock()
				return true
			})
			if errs[k] == nil && got != n {
				errs[k] = fmt.Errorf("client %d got %d events, want %d", k+1, got, n)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d clients received %d events each\n", clients, n)
	return nil
}

// Command jobs shows short polling and long polling through the demux proxy: a job
// service (POST /jobs submits, GET /jobs/{id} reports status, GET /jobs/{id}?wait=30s
// holds the request until the job is done or the wait ends) is served over h2c, and
// the proxy in front of it lets HTTP/1.1 clients reach it over one HTTP/2 connection.
// Held long polls cost the proxy one stream each, not one connection each.
//
// With no flags it starts both on loopback, then polls one job with short polling and
// one with long polling, prints what happened, and stops:
//
//	go run ./examples/jobs
//	go run ./examples/jobs -duration 2s -poll 250ms
//
// Or keep serving (Ctrl-C to stop) and use curl:
//
//	go run ./examples/jobs -serve -listen 127.0.0.1:8081
//	curl -X POST 'http://127.0.0.1:8081/jobs?duration=5s'
//	curl 'http://127.0.0.1:8081/jobs/1?wait=30s'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/muxpool/muxpool/internal/h2cstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "jobs:", err)
		os.Exit(1)
	}
}

// run parses args, starts the service and the proxy, and runs the demo (or, with
// -serve, serves until ctx ends).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jobs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "proxy address for HTTP/1.1 clients")
	backendAddr := fs.String("backend", "127.0.0.1:0", "job service address (h2c)")
	duration := fs.Duration("duration", time.Second, "how long a job takes")
	poll := fs.Duration("poll", 200*time.Millisecond, "demo: short-polling interval")
	wait := fs.Duration("wait", 30*time.Second, "demo: long-poll wait")
	serve := fs.Bool("serve", false, "serve until interrupted instead of running the demo")
	verbose := fs.Bool("v", false, "print the proxy's access log on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration < 0 || *duration > maxDuration || *poll <= 0 || *wait <= 0 || *wait > maxWait {
		return errors.New("want 0 <= -duration <= 1m, -poll > 0 and 0 < -wait <= 1m")
	}
	svc := NewService(*duration)
	var logw io.Writer
	if *verbose {
		logw = stderr
	}
	st, err := h2cstack.Start(svc, *backendAddr, *listen, logw)
	if err != nil {
		return err
	}
	defer func() {
		svc.Close() // release held long polls first
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st.Close(sctx)
	}()
	fmt.Fprintf(stdout, "job service (h2c) on %s, demux proxy for HTTP/1.1 clients on %s\n", st.Backend, st.URL)
	if *serve {
		<-ctx.Done()
		return nil
	}
	return demo(ctx, st, *duration, *poll, *wait, stdout)
}

// demo runs one job with short polling and one with long polling and prints both.
func demo(ctx context.Context, st *h2cstack.Stack, duration, poll, wait time.Duration, stdout io.Writer) error {
	c := http1Client()
	defer c.CloseIdleConnections()

	job, err := submit(ctx, c, st.URL, duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "short polling: job %s submitted (takes %s), GET /jobs/%s every %s\n", job.ID, duration, job.ID, poll)
	start := time.Now()
	final, n, err := shortPoll(ctx, c, st.URL, job.ID, poll, func(n int, s Status) {
		fmt.Fprintf(stdout, "  poll %d at %s: %s\n", n, time.Since(start).Round(time.Millisecond), s.Status)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  %q after %d requests, %s\n", final.Result, n, time.Since(start).Round(time.Millisecond))

	if job, err = submit(ctx, c, st.URL, duration); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "long polling: job %s submitted (takes %s), GET /jobs/%s?wait=%s\n", job.ID, duration, job.ID, wait)
	start = time.Now()
	if final, n, err = longPoll(ctx, c, st.URL, job.ID, wait); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  %q after %d request(s), %s\n", final.Result, n, time.Since(start).Round(time.Millisecond))
	ps := st.Proxy.Stats()
	fmt.Fprintf(stdout, "proxy: %d requests over %d upstream connection(s)\n", ps.Requests, ps.Dials)
	return nil
}

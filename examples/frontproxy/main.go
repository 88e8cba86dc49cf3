// Command frontproxy serves HTTP/1.1 (and HTTP/2, h2c) clients and forwards every
// request over a bounded pool of upstream connections: by default one HTTP/2
// connection carrying each request as a stream, with a FIFO queue when its streams are
// exhausted. It logs one line per request (upstream conn, stream, queue wait, status,
// bytes), and runs until Ctrl-C or SIGTERM, then drains: it stops accepting and lets
// requests in flight finish (up to 10 s). The upstream is your app: for h2c://, any
// server that speaks HTTP/2 with prior knowledge (a Go http.Server whose Protocols
// include UnencryptedHTTP2); with nothing listening there, every request gets 502.
// -demo-backend starts a small h2c app in-process and proxies to it instead, so the
// command works alone; -cert and -key serve clients over TLS.
//
//	go run ./examples/frontproxy -demo-backend
//	go run ./examples/frontproxy -listen 127.0.0.1:8080 -upstream h2c://127.0.0.1:9000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/muxpool/muxpool/demux"
	"github.com/muxpool/muxpool/promstats"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "frontproxy:", err)
		os.Exit(1)
	}
}

// upstreamList collects -upstream flags, each a URL or a comma list of them.
type upstreamList []string

func (l *upstreamList) String() string { return strings.Join(*l, ",") }

func (l *upstreamList) Set(v string) error {
	for u := range strings.SplitSeq(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	return nil
}

// run parses args, serves until ctx ends, then shuts down gracefully (up to 10 s).
// Logs go to logw.
func run(ctx context.Context, args []string, logw io.Writer) error {
	fs := flag.NewFlagSet("frontproxy", flag.ContinueOnError)
	fs.SetOutput(logw)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve clients on")
	var upstreams upstreamList
	fs.Var(&upstreams, "upstream", "upstream: h2c://host:port, https://host:port or http://host:port[/path]; repeat the flag or give a comma list for several hosts (default h2c://127.0.0.1:9000)")
	maxConns := fs.Int("max-conns", 0, "upstream connections per target (0: 8 for HTTP/2, dialled as needed; 6 for HTTP/1.1)")
	maxStreams := fs.Int("max-streams", 0, "concurrent streams per upstream HTTP/2 connection (0: 100, lowered to the peer's limit)")
	queueTimeout := fs.Duration("queue-timeout", demux.DefaultQueueTimeout, "how long a request may wait for an upstream stream before 503")
	dialTimeout := fs.Duration("dial-timeout", demux.DefaultDialTimeout, "bound on establishing one upstream connection")
	headerTimeout := fs.Duration("response-header-timeout", 0, "bound on waiting for upstream response headers (0: none, as long polls need)")
	writeIdle := fs.Duration("write-idle-timeout", demux.DefaultWriteIdleTimeout, "bound on one write to a client that does not read")
	readHeader := fs.Duration("read-header-timeout", demux.DefaultReadHeaderTimeout, "bound on reading a client's request head")
	idle := fs.Duration("idle-timeout", demux.DefaultIdleTimeout, "how long an idle client connection is kept")
	admin := fs.String("admin", "", "serve /metrics (Prometheus), /healthz and /stats (JSON) on this address, e.g. 127.0.0.1:9090")
	verbose := fs.Bool("v", false, "log upstream connection events too")
	demo := fs.Bool("demo-backend", false, "start a small h2c app in-process and proxy to it (ignores -upstream)")
	certFile := fs.String("cert", "", "serve clients over TLS with this certificate (PEM; with -key)")
	keyFile := fs.String("key", "", "the private key for -cert (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))
	if *demo {
		addr, stopDemo, err := startDemoBackend()
		if err != nil {
			return err
		}
		defer stopDemo()
		upstreams = upstreamList{"h2c://" + addr}
	}
	if len(upstreams) == 0 {
		upstreams = upstreamList{"h2c://127.0.0.1:9000"}
	}

	queueWait := promstats.NewHistogram(nil) // for /metrics
	p, err := demux.New(demux.Config{
		QueueWaitObserver:     queueWait,
		Upstreams:             upstreams,
		MaxConns:              *maxConns,
		MaxStreamsPerConn:     *maxStreams,
		QueueTimeout:          *queueTimeout,
		DialTimeout:           *dialTimeout,
		ResponseHeaderTimeout: *headerTimeout,
		WriteIdleTimeout:      *writeIdle,
		Logger:                log,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := demux.NewServer(ln.Addr().String(), p)
	srv.ReadHeaderTimeout, srv.IdleTimeout = *readHeader, *idle
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	if *admin != "" {
		stopAdmin, err := serveAdmin(*admin, p, queueWait, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopAdmin()
	}
	log.Info("listening", "addr", ln.Addr().String(), "upstreams", strings.Join(upstreams, ","), "tls", *certFile != "")

	errc := make(chan error, 1)
	go func() {
		if *certFile != "" || *keyFile != "" {
			errc <- srv.ServeTLS(ln, *certFile, *keyFile)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	st := p.Stats()
	log.Info("stopped", "requests", st.Requests, "queue_waits", st.QueueWaits, "queue_wait_total", st.QueueWaitTotal,
		"retries", st.Retries, "resets", st.Resets, "goaways", st.GoAways, "dials", st.Dials)
	return err
}

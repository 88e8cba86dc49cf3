// Command compare is muxpool's main job: it measures six connections against
// one multiplexed connection for the same request/response workload, with real
// traffic over loopback TCP and round-trip time added by a userspace delay
// relay (internal/netem), and prints a table; with -out it also writes CSV,
// JSON and a chart (SVG and PNG, text drawn as glyph outlines so they look
// the same everywhere).
//
//	go run ./bench/cmd/compare                   # defaults, about 20 s
//	go run ./bench/cmd/compare -rtt 10ms -clients 100 -requests 2000 -out /tmp/cmp
//	go run ./bench/cmd/compare -out docs         # docs/compare.png, the README's picture
//
// -sweep runs the comparison at several values of one parameter and charts
// measured requests/s against it beside the model's prediction:
//
//	go run ./bench/cmd/compare -sweep rtt=0,5,10,20,40,80 -out docs   # docs/sweep-rtt.png
//
// Comparisons (each a pair of strategies, "six-conn" against "multiplexed"):
//
//	http   one browser-like client: six HTTP/1.1 connections vs one h2c connection
//	demux  many HTTP/1.1 clients -> demux -> six HTTP/1.1 upstream conns vs one h2c upstream conn
//	mux    six TCP connections vs one TCP connection carrying mux streams
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/muxpool/muxpool/internal/netem"
)

// errUsage marks bad flags; main exits with status 2 for it.
var errUsage = errors.New("usage")

// strategy is one side of a comparison.
type strategy struct {
	group       string // the comparison: http, demux, mux
	name        string // e.g. h1x6, h2x1
	leg         string // where the relay's delay sits
	multiplexed bool   // one multiplexed connection (else the six-connection baseline)
	start       func(ctx context.Context, p params) (*client, error)
}

func (s strategy) id() string { return s.group + "/" + s.name }

// allStrategies lists every strategy in table order.
func allStrategies() []strategy {
	return slices.Concat(httpStrategies(), demuxStrategies(), muxStrategies())
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// run parses args, runs the selected strategies and writes the table to
// stdout and progress to stderr. Bad flags return an error wrapping errUsage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p params
	fs.DurationVar(&p.RTT, "rtt", 40*time.Millisecond, "round-trip time added by the relay on the delayed leg (half each way)")
	fs.IntVar(&p.Clients, "clients", 60, "concurrent requesters")
	fs.IntVar(&p.Requests, "requests", 600, "measured requests per strategy and run")
	fs.IntVar(&p.Size, "size", 1024, "response body bytes")
	fs.DurationVar(&p.Think, "think", 10*time.Millisecond, "backend think time per request")
	fs.IntVar(&p.Streams, "streams", 100, "max concurrent streams on the multiplexed connection")
	fs.Int64Var(&p.Bandwidth, "bandwidth", 0, "bytes/s per direction on the delayed leg, shared by all its connections (0 = unlimited)")
	fs.Float64Var(&p.Loss, "loss", 0, "per-segment probability that the relay stalls a connection (approximates TCP loss)")
	fs.DurationVar(&p.Stall, "stall", 0, "how long a \"lost\" segment stalls its connection (0 = 200ms, TCP's minimum RTO)")
	fs.Uint64Var(&p.Seed, "seed", 1, "seed for -loss")
	fs.IntVar(&p.Runs, "runs", 1, "repetitions per strategy (latencies pooled, total = median)")
	out := fs.String("out", "", "directory for the CSV, the JSON and the chart as SVG and PNG: compare.{csv,json,svg,png}, or sweep-PARAM.* with -sweep")
	size := defaultChartSize
	fs.Var(&size, "chart-size", "chart size in pixels at 96 per inch (640x360 suits a terminal image viewer, 1280x720 a slide; text grows with the size)")
	filter := fs.String("strategies", "", "comma-separated groups or group/name to run (default all: "+strings.Join(ids(allStrategies()), ",")+")")
	quiet := fs.Bool("q", false, "no progress on stderr")
	var sweep sweepSpec
	fs.Var(&sweep, "sweep", "run the comparison at each value of one parameter and chart req/s against it with the model: rtt=0,5,10,20,40,80 (ms) or clients=6,12,24,48,96")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if err := p.validate(); err != nil {
		return err
	}
	// The relay reads 0 as its default; record the stall it will really use.
	if p.Stall == 0 {
		p.Stall = netem.DefaultStall
	}
	sel, err := selectStrategies(allStrategies(), *filter)
	if err != nil {
		return err
	}

	prog := newProgress(stderr, *quiet)
	defer prog.stop()
	if sweep.Param != "" {
		sr, err := runSweep(ctx, sweep, p, sel, prog)
		prog.stop()
		if err != nil {
			return err
		}
		sr.chart = size
		if err := sr.writeTable(stdout); err != nil {
			return err
		}
		if *out != "" {
			names, err := sr.writeFiles(*out)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "\nwrote %s\n", strings.Join(names, ", "))
		}
		return nil
	}
	results, err := measure(ctx, p, sel, prog, "")
	prog.stop()
	if err != nil {
		return err
	}
	rep := report{Params: p, Results: results, Machine: machine(), chart: size}
	if err := rep.writeTable(stdout); err != nil {
		return err
	}
	if *out != "" {
		if err := rep.writeFiles(*out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", strings.Join(rep.files(*out), ", "))
	}
	return nil
}

func ids(ss []strategy) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.id())
	}
	return out
}

// selectStrategies keeps the strategies named by filter (groups or
// group/name, comma-separated; empty = all), in table order. An unknown name
// is a usage error.
func selectStrategies(all []strategy, filter string) ([]strategy, error) {
	if strings.TrimSpace(filter) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, f := range strings.Split(filter, ",") {
		f = strings.TrimSpace(f)
		if !slices.ContainsFunc(all, func(s strategy) bool { return f == s.group || f == s.id() }) {
			return nil, fmt.Errorf("%w: unknown strategy %q (have %s)", errUsage, f, strings.Join(ids(all), ","))
		}
		want[f] = true
	}
	var sel []strategy
	for _, s := range all {
		if want[s.group] || want[s.id()] {
			sel = append(sel, s)
		}
	}
	return sel, nil
}

// measure runs every selected strategy p.Runs times, interleaving runs so
// that drift in machine load hits all strategies alike.
// Progress labels each step with prefix first.
func measure(ctx context.Context, p params, sel []strategy, prog *progress, prefix string) ([]result, error) {
	samples := make([][]sample, len(sel))
	conns := make([]int64, len(sel))
	steps := len(sel) * p.Runs
	for run := range p.Runs {
		for i, s := range sel {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var done atomic.Int64
			prog.begin(fmt.Sprintf("%s[%d/%d] %s", prefix, run*len(sel)+i+1, steps, s.id()), p.Requests, &done)
			smp, n, err := measureOne(ctx, p, s, &done)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.id(), err)
			}
			samples[i] = append(samples[i], smp)
			conns[i] = max(conns[i], n)
		}
	}
	results := make([]result, len(sel))
	for i, s := range sel {
		results[i] = summarize(p, s, samples[i], conns[i])
	}
	setRatios(results)
	return results, nil
}

// measureOne sets a strategy up, warms it (one request per connection slot,
// so connections exist before timing starts), drives the measured requests
// and tears it down. It returns the connections used across the delayed leg.
func measureOne(ctx context.Context, p params, s strategy, done *atomic.Int64) (sample, int64, error) {
	c, err := s.start(ctx, p)
	if err != nil {
		return sample{}, 0, err
	}
	defer c.close()
	warm := p.concurrency(s.multiplexed)
	if w := drive(ctx, c, warm, warm, p.requestTimeout(), nil); w.errors > 0 {
		return sample{}, 0, fmt.Errorf("warm-up: %w", w.firstErr)
	}
	smp := drive(ctx, c, p.Requests, p.Clients, p.requestTimeout(), done)
	return smp, c.conns(), ctx.Err()
}

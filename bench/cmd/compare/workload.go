package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// params is one comparison's workload, shared by every strategy.
type params struct {
	RTT       time.Duration `json:"rtt_ns"`     // round trip added on the delayed leg (half each way)
	Clients   int           `json:"clients"`    // concurrent requesters
	Requests  int           `json:"requests"`   // measured requests per strategy and run
	Size      int           `json:"size_bytes"` // response body bytes
	Think     time.Duration `json:"think_ns"`   // backend time per request before answering
	Streams   int           `json:"streams"`    // max concurrent streams on a multiplexed connection
	Bandwidth int64         `json:"bandwidth"`  // bytes/s per direction on the delayed leg; 0 = unlimited
	Loss      float64       `json:"loss"`       // per-segment stall probability on the delayed leg
	Stall     time.Duration `json:"stall_ns"`   // how long a "lost" segment holds its connection
	Seed      uint64        `json:"seed"`       // loss generator seed
	Runs      int           `json:"runs"`       // repetitions per strategy
}

// sixConns is the browser's per-host HTTP/1.1 connection limit, the baseline
// every multiplexed strategy is compared with.
const sixConns = 6

// requestTimeout bounds one request, queueing included, so a wedged strategy
// cannot hang the run: 30 s beyond twice the slowest strategy's predicted
// total, since with six connections a request may queue behind most others.
func (p params) requestTimeout() time.Duration {
	return 30*time.Second + 2*p.model(false)
}

// errShortResponse reports a response body that is not exactly -size bytes.
var errShortResponse = errors.New("compare: response body has the wrong size")

// client is one strategy, set up and ready: do performs one request and
// checks its response; conns counts the TCP connections opened across the
// delayed leg so far.
type client struct {
	do    func(ctx context.Context) error
	conns func() int64
	close func()
}

// sample is what one run of one strategy measured.
type sample struct {
	total     time.Duration
	latencies []time.Duration // successful requests only
	errors    int
	firstErr  error
}

// drive performs n requests with that many concurrent workers, each bounded
// by timeout, and records each request's latency. done, if not nil, is bumped
// once per finished request for progress.
func drive(ctx context.Context, c *client, n, workers int, timeout time.Duration, done *atomic.Int64) sample {
	var (
		next      atomic.Int64
		mu        sync.Mutex
		s         sample
		latencies = make([]time.Duration, 0, n)
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				rctx, cancel := context.WithTimeout(ctx, timeout)
				t0 := time.Now()
				err := c.do(rctx)
				lat := time.Since(t0)
				cancel()
				mu.Lock()
				if err != nil {
					s.errors++
					if s.firstErr == nil {
						s.firstErr = err
					}
				} else {
					latencies = append(latencies, lat)
				}
				mu.Unlock()
				if done != nil {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	s.total = time.Since(start)
	slices.Sort(latencies)
	s.latencies = latencies
	return s
}

// percentile returns the q-quantile (0..1) of sorted latencies, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// concurrency is how many requests a strategy can have in flight at once.
func (p params) concurrency(multiplexed bool) int {
	if multiplexed {
		return min(p.Clients, p.Streams)
	}
	return min(p.Clients, sixConns)
}

// model is the simple prediction: ceil(N/concurrency) rounds, each one round
// trip plus the backend's think time, or, on a bandwidth-capped link, the
// time to move every response body if that is longer. It ignores headers,
// CPU and loss.
func (p params) model(multiplexed bool) time.Duration {
	c := p.concurrency(multiplexed)
	rounds := (p.Requests + c - 1) / c
	t := time.Duration(rounds) * (p.RTT + p.Think)
	if p.Bandwidth > 0 {
		wire := time.Duration(float64(p.Requests) * float64(p.Size) / float64(p.Bandwidth) * float64(time.Second))
		t = max(t, wire)
	}
	return t
}

// validate rejects flag values the workload cannot run with.
func (p params) validate() error {
	switch {
	case p.RTT < 0:
		return fmt.Errorf("%w: -rtt %v < 0", errUsage, p.RTT)
	case p.Clients < 1:
		return fmt.Errorf("%w: -clients %d < 1", errUsage, p.Clients)
	case p.Requests < 1:
		return fmt.Errorf("%w: -requests %d < 1", errUsage, p.Requests)
	case p.Size < 0:
		return fmt.Errorf("%w: -size %d < 0", errUsage, p.Size)
	case p.Think < 0:
		return fmt.Errorf("%w: -think %v < 0", errUsage, p.Think)
	case p.Streams < 1:
		return fmt.Errorf("%w: -streams %d < 1", errUsage, p.Streams)
	case p.Bandwidth < 0:
		return fmt.Errorf("%w: -bandwidth %d < 0", errUsage, p.Bandwidth)
	case !(p.Loss >= 0 && p.Loss < 1):
		return fmt.Errorf("%w: -loss %v not in [0, 1)", errUsage, p.Loss)
	case p.Stall < 0:
		return fmt.Errorf("%w: -stall %v < 0", errUsage, p.Stall)
	case p.Runs < 1:
		return fmt.Errorf("%w: -runs %d < 1", errUsage, p.Runs)
	}
	return nil
}

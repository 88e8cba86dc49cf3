package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/puddle/v2"

	"github.com/muxpool/muxpool/pool"
)

// poolBenchSize is the pool size of the acquire/release benchmarks (issue 3).
const poolBenchSize = 8

// poolImpl is one pool under test. open returns use, which acquires a resource, runs hold
// (if not nil) while holding it, and releases it; and a closer.
type poolImpl struct {
	name string
	open func(b *testing.B) (use func(ctx context.Context, hold func()) error, close func())
}

var poolImpls = []poolImpl{
	{"muxpool", openMuxpool},
	{"puddle", openPuddle},
	{"databasesql", openDatabaseSQL},
}

type benchRes struct{ n int }

func newBenchRes(context.Context) (*benchRes, error) { return &benchRes{}, nil }

// pooledRes is a pool's handle on an acquired resource, the shape muxpool's pool and puddle
// share.
type pooledRes interface {
	Value() *benchRes
	Release()
}

// acquireAndHold returns the benchmark's op for a pool: acquire, touch the value, hold
// (optional), release.
func acquireAndHold[R pooledRes](acquire func(context.Context) (R, error)) func(context.Context, func()) error {
	return func(ctx context.Context, hold func()) error {
		r, err := acquire(ctx)
		if err != nil {
			return err
		}
		r.Value().n++
		if hold != nil {
			hold()
		}
		r.Release()
		return nil
	}
}

func openMuxpool(b *testing.B) (func(context.Context, func()) error, func()) {
	p, err := pool.New(pool.Config[*benchRes]{Constructor: newBenchRes, MaxSize: poolBenchSize})
	if err != nil {
		b.Fatal(err)
	}
	return acquireAndHold(p.Acquire), p.Close
}

func openPuddle(b *testing.B) (func(context.Context, func()) error, func()) {
	p, err := puddle.NewPool(&puddle.Config[*benchRes]{
		Constructor: newBenchRes,
		Destructor:  func(*benchRes) {},
		MaxSize:     poolBenchSize,
	})
	if err != nil {
		b.Fatal(err)
	}
	return acquireAndHold(p.Acquire), p.Close
}

func openDatabaseSQL(b *testing.B) (func(context.Context, func()) error, func()) {
	db := sql.OpenDB(nopConnector{})
	db.SetMaxOpenConns(poolBenchSize)
	db.SetMaxIdleConns(poolBenchSize)
	return func(ctx context.Context, hold func()) error {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		if hold != nil {
			hold()
		}
		return c.Close()
	}, func() { db.Close() }
}

// BenchmarkPool measures one Acquire plus one Release on a pool of 8 resources from 1, 8, 32
// and 512 goroutines, for muxpool's pool, jackc/puddle/v2 (pgxpool's core) and database/sql
// (driving a no-op driver). ns/op is per acquire+release over all goroutines; with 1 and 8
// goroutines nobody waits, with 32 and 512 most acquires wait for a hand-off. cpu-ns/op is the
// process's CPU time per operation.
//
//	go test ./bench -run '^$' -bench 'Pool$' -benchtime=1s -count=3
func BenchmarkPool(b *testing.B) {
	for _, g := range []int{1, 8, 32, 512} {
		for _, impl := range poolImpls {
			b.Run(fmt.Sprintf("goroutines=%d/impl=%s", g, impl.name), func(b *testing.B) {
				benchPool(b, impl, g)
			})
		}
	}
}

func benchPool(b *testing.B, impl poolImpl, goroutines int) {
	use, closePool := impl.open(b)
	defer closePool()
	ctx := context.Background()
	// Warm the pool to its full size so construction is not timed.
	var warm sync.WaitGroup
	for range poolBenchSize {
		warm.Go(func() {
			if err := use(ctx, nil); err != nil {
				b.Error(err)
			}
		})
	}
	warm.Wait()

	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range goroutines {
		n := b.N / goroutines
		if i < b.N%goroutines {
			n++
		}
		wg.Go(func() {
			for range n {
				if err := use(ctx, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	// CPU time (user+system, all threads) per operation: steadier than ns/op on a machine
	// shared with other work, since it does not count time spent waiting for a CPU.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU returns the CPU time the process has used so far (user + system, all threads).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPoolWait measures how evenly a full pool shares its 8 resources among 64
// goroutines that each hold a resource for about 50 µs while parked (a sleep standing in for
// a round trip to a server): p50, p99 and max time from calling Acquire to getting a
// resource, per implementation. A strictly FIFO pool bounds the
// worst wait by the queue length; database/sql serves waiters in random order, so its tail is
// long.
//
//	go test ./bench -run '^$' -bench 'PoolWait' -benchtime=20000x -count=3
func BenchmarkPoolWait(b *testing.B) {
	const goroutines = 64
	for _, impl := range poolImpls {
		b.Run("goroutines=64/impl="+impl.name, func(b *testing.B) {
			use, closePool := impl.open(b)
			defer closePool()
			ctx := context.Background()
			waits := make([][]time.Duration, goroutines)
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range goroutines {
				n := b.N / goroutines
				if i < b.N%goroutines {
					n++
				}
				wg.Go(func() {
					w := make([]time.Duration, 0, n)
					for range n {
						start := time.Now()
						err := use(ctx, func() { w = append(w, time.Since(start)); time.Sleep(50 * time.Microsecond) })
						if err != nil {
							b.Error(err)
							return
						}
					}
					waits[i] = w
				})
			}
			wg.Wait()
			b.StopTimer()
			var all []time.Duration
			for _, w := range waits {
				all = append(all, w...)
			}
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			q := func(f float64) float64 { return float64(all[int(f*float64(len(all)-1))].Microseconds()) }
			b.ReportMetric(q(0.5), "p50-wait-µs")
			b.ReportMetric(q(0.99), "p99-wait-µs")
			b.ReportMetric(q(1), "max-wait-µs")
		})
	}
}

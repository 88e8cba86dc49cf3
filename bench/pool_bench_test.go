package bench

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/puddle/v2"

	"github.com/muxpool/muxpool/pool"
)

// poolBenchSize is the pool size of the acquire/release benchmarks (issue 3).
const poolBenchSize = 8

// poolImpl is one pool under test: open returns an acquire+release function and a closer.
type poolImpl struct {
	name string
	open func(b *testing.B) (acquireRelease func(ctx context.Context) error, close func())
}

var poolImpls = []poolImpl{
	{"muxpool", openMuxpool},
	{"puddle", openPuddle},
	{"databasesql", openDatabaseSQL},
}

type benchRes struct{ n int }

func newBenchRes(context.Context) (*benchRes, error) { return &benchRes{}, nil }

func openMuxpool(b *testing.B) (func(context.Context) error, func()) {
	p, err := pool.New(pool.Config[*benchRes]{Constructor: newBenchRes, MaxSize: poolBenchSize})
	if err != nil {
		b.Fatal(err)
	}
	return func(ctx context.Context) error {
		r, err := p.Acquire(ctx)
		if err != nil {
			return err
		}
		r.Value().n++
		r.Release()
		return nil
	}, p.Close
}

func openPuddle(b *testing.B) (func(context.Context) error, func()) {
	p, err := puddle.NewPool(&puddle.Config[*benchRes]{
		Constructor: newBenchRes,
		Destructor:  func(*benchRes) {},
		MaxSize:     poolBenchSize,
	})
	if err != nil {
		b.Fatal(err)
	}
	return func(ctx context.Context) error {
		r, err := p.Acquire(ctx)
		if err != nil {
			return err
		}
		r.Value().n++
		r.Release()
		return nil
	}, p.Close
}

func openDatabaseSQL(b *testing.B) (func(context.Context) error, func()) {
	db := sql.OpenDB(nopConnector{})
	db.SetMaxOpenConns(poolBenchSize)
	db.SetMaxIdleConns(poolBenchSize)
	return func(ctx context.Context) error {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
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
	acquireRelease, closePool := impl.open(b)
	defer closePool()
	ctx := context.Background()
	// Warm the pool to its full size so construction is not timed.
	var warm sync.WaitGroup
	for range poolBenchSize {
		warm.Go(func() {
			if err := acquireRelease(ctx); err != nil {
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
				if err := acquireRelease(ctx); err != nil {
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

package pgtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// RequireOrSkip ends tb when err means PostgreSQL or PgBouncer is not installed (ErrNoPostgres,
// ErrNoPgBouncer): with tb.Skip normally, and with tb.Fatal when the environment variable CI is
// "true" (CI must not silently skip the database tests). Any other non-nil err is fatal. A nil
// err does nothing.
func RequireOrSkip(tb testing.TB, err error) {
	tb.Helper()
	switch {
	case err == nil:
	case (errors.Is(err, ErrNoPostgres) || errors.Is(err, ErrNoPgBouncer)) && os.Getenv("CI") != "true":
		tb.Skip(err.Error())
	default:
		tb.Fatal(err)
	}
}

// New starts a throwaway cluster (or uses DATABASE_URL) for tb alone and stops it in
// tb.Cleanup. It skips or fails tb as RequireOrSkip does when no server can be started.
func New(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := Start()
	RequireOrSkip(tb, err)
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return c
}

// shared is the test binary's one cluster, started by the first Shared call and stopped by the
// TestingM that Main returns.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
	mu      sync.Mutex
	stopped bool
}

// Shared returns the test binary's shared cluster, starting it on first use, so that every test
// in a package talks to one server (initdb plus start-up cost about a second). It skips or fails
// tb as RequireOrSkip does when no server can be started. The package's TestMain must run the
// tests through Main, which stops the cluster.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	shared.once.Do(func() {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if shared.stopped {
			shared.err = errors.New("pgtest: Shared called after Main stopped the cluster")
			return
		}
		shared.cluster, shared.err = Start()
	})
	RequireOrSkip(tb, shared.err)
	return shared.cluster
}

// TestingM is the part of *testing.M that Main wraps; goleak.VerifyTestMain accepts it.
type TestingM interface{ Run() int }

// Main wraps m so that running it also stops the shared cluster after the tests, before any
// goroutine-leak check that runs afterwards:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }
//
// A failure to stop the cluster cleanly turns a passing run into a failing one.
func Main(m TestingM) TestingM { return mainRunner{m} }

type mainRunner struct{ m TestingM }

func (r mainRunner) Run() int {
	code := r.m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func stopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.stopped = true
	if shared.cluster == nil {
		return nil
	}
	return shared.cluster.Stop()
}

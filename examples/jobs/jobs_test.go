package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/muxpool/muxpool/internal/h2cstack"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newStack starts the job service behind the proxy for one test.
func newStack(t *testing.T, duration time.Duration) (*Service, *h2cstack.Stack) {
	t.Helper()
	svc := NewService(duration)
	st, err := h2cstack.Start(svc, "127.0.0.1:0", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.Close(ctx); err != nil {
			t.Errorf("stack close: %v", err)
		}
	})
	return svc, st
}

// testCtx returns a context that ends with the test, bounded well inside its budget.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestShortPollingSeesDone polls a 300 ms job every 30 ms through the proxy: it sees
// "running" first and eventually "done" with the job's result.
func TestShortPollingSeesDone(t *testing.T) {
	_, st := newStack(t, 300*time.Millisecond)
	c := http1Client()
	defer c.CloseIdleConnections()
	ctx := testCtx(t)
	job, err := submit(ctx, c, st.URL, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != StatusRunning {
		t.Errorf("submitted job is %q, want running", job.Status)
	}
	var seen []string
	final, n, err := shortPoll(ctx, c, st.URL, job.ID, 30*time.Millisecond, func(_ int, s Status) { seen = append(seen, s.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != StatusDone || final.Result != "job 1 finished after 300ms" {
		t.Errorf("final status %+v", final)
	}
	if n < 3 || seen[0] != StatusRunning {
		t.Errorf("%d polls saw %v; want several, starting with running", n, seen)
	}
}

// TestLongPollReturnsOnCompletion holds ten long polls (wait=30s) on a 400 ms job through
// the proxy: each returns "done" in one request as soon as the job completes, not after
// the wait, and all of them shared one upstream connection.
func TestLongPollReturnsOnCompletion(t *testing.T) {
	_, st := newStack(t, 0)
	c := http1Client()
	defer c.CloseIdleConnections()
	ctx := testCtx(t)
	start := time.Now()
	job, err := submit(ctx, c, st.URL, 400*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			final, n, err := longPoll(ctx, c, st.URL, job.ID, 30*time.Second)
			took := time.Since(start)
			if err != nil || final.Status != StatusDone || n != 1 {
				t.Errorf("long poll: %+v after %d requests, %v", final, n, err)
			}
			if took < 350*time.Millisecond || took > 3*time.Second {
				t.Errorf("long poll returned after %s; want just after the job's 400ms", took)
			}
		})
	}
	wg.Wait()
	if ps := st.Proxy.Stats(); ps.Dials != 1 || ps.Requests != 11 {
		t.Errorf("proxy: %d requests over %d dials; want 11 over 1", ps.Requests, ps.Dials)
	}
}

// TestLongPollWaitEnds: a long poll on a job that outlasts the wait returns "running"
// when the wait ends; Close releases a held long poll at once.
func TestLongPollWaitEnds(t *testing.T) {
	svc, st := newStack(t, time.Minute)
	c := http1Client()
	defer c.CloseIdleConnections()
	ctx := testCtx(t)
	job, err := submit(ctx, c, st.URL, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := call(ctx, c, "GET", st.URL+"/jobs/"+job.ID+"?wait=200ms", 200)
	if took := time.Since(start); err != nil || s.Status != StatusRunning || took < 200*time.Millisecond || took > 3*time.Second {
		t.Errorf("wait=200ms: %+v, %v after %s", s, err, took)
	}
	time.AfterFunc(100*time.Millisecond, svc.Close)
	start = time.Now()
	s, err = call(ctx, c, "GET", st.URL+"/jobs/"+job.ID+"?wait=30s", 200)
	if took := time.Since(start); err != nil || s.Status != StatusRunning || took > 3*time.Second {
		t.Errorf("long poll during Close: %+v, %v after %s", s, err, took)
	}
	if _, err := call(ctx, c, "GET", st.URL+"/jobs/99", 404); err != nil {
		t.Errorf("unknown job: %v", err)
	}
}

// TestRunDemo runs the command's demo briefly and checks its account of both patterns.
func TestRunDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(testCtx(t), []string{"-duration", "300ms", "-poll", "50ms"}, &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{`"job 1 finished after 300ms" after `, `"job 2 finished after 300ms" after 1 request(s)`,
		"over 1 upstream connection(s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

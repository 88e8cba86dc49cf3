package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/muxpool/muxpool/internal/h2cstack"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newStack starts events behind the proxy for one test.
func newStack(t *testing.T, events *Events) *h2cstack.Stack {
	t.Helper()
	st, err := h2cstack.Start(events, "127.0.0.1:0", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.Close(ctx); err != nil {
			t.Errorf("stack close: %v", err)
		}
	})
	return st
}

// testCtx returns a context that ends with the test, bounded well inside its budget.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEventsStreamedInOrder: an HTTP/1.1 client receives events 1..N through the proxy
// in order, and each arrives before the backend emits the next: the backend holds event
// i+1 until the client has event i, so a proxy that buffered would stall the stream (and
// fail the test after a few seconds) instead of delivering it.
func TestEventsStreamedInOrder(t *testing.T) {
	const n = 8
	received := make(chan int, n)
	var mu sync.Mutex
	emitted := make(map[int]time.Time)
	st := newStack(t, &Events{BeforeEmit: func(id int) {
		if id > 1 {
			select {
			case got := <-received:
				if got != id-1 {
					t.Errorf("before event %d the client had event %d", id, got)
				}
			case <-time.After(3 * time.Second):
				t.Errorf("event %d did not reach the client within 3s of its emission: buffered, not streamed", id-1)
			}
		}
		mu.Lock()
		emitted[id] = time.Now()
		mu.Unlock()
	}})
	c := http1Client()
	defer c.CloseIdleConnections()
	var got []Event
	err := subscribe(testCtx(t), c, fmt.Sprintf("%s/events?n=%d&interval=20ms", st.URL, n), "", func(ev Event) bool {
		got = append(got, ev)
		id, _ := strconv.Atoi(ev.ID)
		received <- id
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("got %d events, want %d", len(got), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, ev := range got {
		id := i + 1
		if ev.ID != strconv.Itoa(id) || ev.Type != "tick" || !strings.Contains(ev.Data, fmt.Sprintf(`"n":%d,`, id)) {
			t.Fatalf("event %d = %+v", id, ev)
		}
		if ev.Received.Before(emitted[id]) {
			t.Errorf("event %d received before it was emitted", id)
		}
		if next, ok := emitted[id+1]; ok && !ev.Received.Before(next) {
			t.Errorf("event %d arrived after event %d was emitted", id, id+1)
		}
	}
}

// TestResumeFromLastEventID: a reconnecting client that sends Last-Event-ID gets only
// the later events.
func TestResumeFromLastEventID(t *testing.T) {
	st := newStack(t, &Events{})
	c := http1Client()
	defer c.CloseIdleConnections()
	var ids []string
	err := subscribe(testCtx(t), c, st.URL+"/events?n=7&interval=5ms", "5", func(ev Event) bool {
		ids = append(ids, ev.ID)
		return true
	})
	if err != nil || strings.Join(ids, ",") != "6,7" {
		t.Errorf("resumed after 5: ids %v, %v; want 6,7", ids, err)
	}
}

// TestClientsShareOneUpstream: three concurrent clients each get every event in order,
// all over the proxy's one upstream connection.
func TestClientsShareOneUpstream(t *testing.T) {
	st := newStack(t, &Events{})
	c := http1Client()
	defer c.CloseIdleConnections()
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for k := range 3 {
		wg.Go(func() {
			var ids []string
			err := subscribe(ctx, c, st.URL+"/events?n=5&interval=20ms", "", func(ev Event) bool {
				ids = append(ids, ev.ID)
				return true
			})
			if err != nil || strings.Join(ids, ",") != "1,2,3,4,5" {
				t.Errorf("client %d: ids %v, %v", k, ids, err)
			}
		})
	}
	wg.Wait()
	if ps := st.Proxy.Stats(); ps.Dials != 1 || ps.Requests != 3 {
		t.Errorf("proxy: %d requests over %d dials, want 3 over 1", ps.Requests, ps.Dials)
	}
}

// TestRunDemo runs the command's demo briefly.
func TestRunDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(testCtx(t), []string{"-n", "3", "-interval", "20ms", "-clients", "2"}, &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"[client 1] id=3 event=tick", "[client 2] id=3 event=tick", "2 clients received 3 events each"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

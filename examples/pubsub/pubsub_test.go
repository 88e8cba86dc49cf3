package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startBroker serves a broker on a loopback port, after configure (if any) has adjusted
// it; the test may close it early (Close is idempotent).
func startBroker(t *testing.T, configure ...func(*Broker)) (*Broker, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := NewBroker()
	for _, f := range configure {
		f(b)
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(ln) }()
	t.Cleanup(func() {
		b.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return b, ln.Addr().String()
}

// TestFanOutExactlyOnceInOrder: two topics, three subscribers (one on each topic, one on
// both over two streams of one session), two publishers sending concurrently. Every
// subscription gets every message of its topic exactly once, in order per publisher, and
// nothing of the other topic.
func TestFanOutExactlyOnceInOrder(t *testing.T) {
	b, addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() *Conn {
		c, err := Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	type got struct {
		topic string
		lines []string
		err   error
	}
	var results []*got
	var readers sync.WaitGroup
	for _, topics := range [][]string{{"news"}, {"sports"}, {"news", "sports"}} {
		c := dial()
		for _, topic := range topics {
			s, err := c.Subscribe(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			r := &got{topic: topic}
			results = append(results, r)
			readers.Go(func() {
				for {
					line, err := s.Next()
					if err != nil {
						if !errors.Is(err, io.EOF) {
							r.err = err
						}
						return
					}
					r.lines = append(r.lines, line)
				}
			})
		}
	}
	stop := context.AfterFunc(ctx, func() { b.Close() }) // bound the readers
	defer stop()

	const pubs, msgs = 2, 100
	topics := []string{"news", "sports"}
	var writers sync.WaitGroup
	for i := range pubs {
		p, err := dial().Publisher(ctx)
		if err != nil {
			t.Fatal(err)
		}
		writers.Go(func() {
			for k := range msgs {
				if err := p.Publish(topics[k%2], fmt.Sprintf("p%d-%d", i, k)); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Errorf("publisher close: %v", err)
			}
		})
	}
	writers.Wait()
	b.Close() // every publisher confirmed, so every line is queued: drain and end with FIN
	readers.Wait()

	for _, r := range results {
		if r.err != nil {
			t.Errorf("%s subscription: %v", r.topic, r.err)
		}
		next := make(map[string]int) // publisher -> next expected k
		for _, line := range r.lines {
			topic, msg, _ := strings.Cut(line, " ")
			if topic != r.topic {
				t.Fatalf("%s subscription got %q (wrong topic)", r.topic, line)
			}
			var pub, k int
			if _, err := fmt.Sscanf(msg, "p%d-%d", &pub, &k); err != nil {
				t.Fatalf("%s subscription got malformed %q", r.topic, line)
			}
			from := fmt.Sprint(pub)
			want := next[from]*2 + map[string]int{"news": 0, "sports": 1}[topic]
			if k != want {
				t.Fatalf("%s subscription: from p%d got #%d, want #%d (lost, duplicated or reordered)", r.topic, pub, k, want)
			}
			next[from]++
		}
		for i := range pubs {
			if n := next[fmt.Sprint(i)]; n != msgs/2 {
				t.Errorf("%s subscription got %d messages from p%d, want %d", r.topic, n, i, msgs/2)
			}
		}
	}
	if st := b.Stats(); st.Published != pubs*msgs || st.Delivered != 2*pubs*msgs || st.Dropped != 0 {
		t.Errorf("stats %+v, want published=%d delivered=%d dropped=0", st, pubs*msgs, 2*pubs*msgs)
	}
}

// TestUnsubscribe: after Unsubscribe the subscription ends with io.EOF and gets nothing more.
func TestUnsubscribe(t *testing.T) {
	b, addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Publisher(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Publish("news", "one")
	if line, err := s.Next(); line != "news one" || err != nil {
		t.Fatalf("got %q, %v", line, err)
	}
	s.Unsubscribe()
	if line, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after Unsubscribe got %q, %v; want io.EOF", line, err)
	}
	p.Publish("news", "two")
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Published != 2 || st.Delivered != 1 {
		t.Errorf("stats %+v, want published=2 delivered=1", st)
	}
}

// TestSlowSubscriberDropped: a subscriber that stops reading holds the publisher back for
// SlowTimeout, then loses its subscription (reset); the reading subscriber of the same
// topic still gets every message in order.
func TestSlowSubscriberDropped(t *testing.T) {
	b, addr := startBroker(t, func(b *Broker) { b.SlowTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var subs []*Subscription
	for range 2 {
		c, err := Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := c.Subscribe(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	const n = 3000 // ~3 MB: more than the stuck stream's window plus its queue
	pad := strings.Repeat("x", 1000)
	var got int
	readDone := make(chan error, 1)
	go func() {
		for {
			line, err := subs[0].Next()
			if err != nil {
				readDone <- err
				return
			}
			if want := fmt.Sprintf("t %d %s", got, pad); line != want {
				readDone <- fmt.Errorf("message %d: got %.20q", got, line)
				return
			}
			got++
		}
	}()
	stop := context.AfterFunc(ctx, func() { b.Close() })
	defer stop()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.Publisher(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range n {
		if err := p.Publish("t", fmt.Sprintf("%d %s", k, pad)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := <-readDone; !errors.Is(err, io.EOF) || got != n {
		t.Errorf("reading subscriber: %d of %d messages, then %v", got, n, err)
	}
	if st := b.Stats(); st.Dropped != 1 || st.Published != n || st.Delivered >= 2*n {
		t.Errorf("stats %+v: want the stuck subscription dropped", st)
	}
	var stuck int
	for {
		if _, err = subs[1].Next(); err != nil {
			break
		}
		stuck++
	}
	if errors.Is(err, io.EOF) || stuck >= n {
		t.Errorf("stuck subscriber read %d messages, then %v; want a reset before the end", stuck, err)
	}
}

package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muxpool/muxpool/mux"
)

// queueSize is how many messages may wait for one subscription before publishers wait
// for it.
const queueSize = 1024

// DefaultSlowTimeout is NewBroker's Broker.SlowTimeout.
const DefaultSlowTimeout = 5 * time.Second

// headerTimeout bounds how long a new stream may take to send its header line.
const headerTimeout = 10 * time.Second

// writeTimeout bounds one write to a subscriber.
const writeTimeout = 5 * time.Second

// Broker fans published lines out to subscribers. Publishers and subscribers connect over
// TCP with one mux session each. Every stream opened to the broker starts with a header
// line: "SUB topic" makes it a subscription to topic (the broker answers "OK topic" and
// then pushes "topic message" lines), "PUB" makes it a publisher stream carrying
// "topic message" lines (lines without a valid topic are ignored). The broker answers a
// publisher's FIN with its own once every line before it has been fanned out.
type Broker struct {
	// SlowTimeout is how long a publisher waits for a subscription whose queue is full
	// before the subscription is reset and dropped, so one stuck subscriber cannot hold up
	// a topic for long. Set it before Serve.
	SlowTimeout time.Duration

	sessions mux.SessionServer // runs session on each client's session

	mu      sync.Mutex
	topics  map[string]map[*subscription]struct{}
	closed  bool
	writers sync.WaitGroup // subscription writers

	published, delivered, dropped atomic.Int64
}

// Stats counts what the broker did.
type Stats struct {
	Published int64 // lines received from publishers
	Delivered int64 // lines queued for subscriptions
	Dropped   int64 // subscriptions dropped for blocking a publisher for SlowTimeout
}

// subscription is one subscriber stream, the queue its writer drains, and gone, closed
// when it is unregistered.
type subscription struct {
	st    *mux.Stream
	topic string
	out   chan string
	gone  chan struct{}
}

// NewBroker returns a broker that is not yet serving.
func NewBroker() *Broker {
	b := &Broker{SlowTimeout: DefaultSlowTimeout, topics: make(map[string]map[*subscription]struct{})}
	b.sessions.Handler = b.session
	return b
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (b *Broker) Serve(ln net.Listener) error {
	err := b.sessions.Serve(ln)
	if errors.Is(err, mux.ErrServerClosed) {
		return nil
	}
	return err
}

// Stats returns a snapshot of the counters.
func (b *Broker) Stats() Stats {
	return Stats{Published: b.published.Load(), Delivered: b.delivered.Load(), Dropped: b.dropped.Load()}
}

// Close lets every subscription's queue drain and end with FIN, then stops accepting,
// closes all sessions and waits for every goroutine.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	for _, subs := range b.topics {
		for sub := range subs {
			b.dropLocked(sub)
		}
	}
	b.mu.Unlock()
	b.writers.Wait()
	return b.sessions.Close()
}

// session accepts the streams of one client until its session ends (or the broker is
// closing), then waits for the streams' goroutines; the session is closed when it returns.
func (b *Broker) session(sess *mux.Session) {
	var streams sync.WaitGroup
	defer streams.Wait()
	for {
		st, err := sess.AcceptStream(context.Background())
		if err != nil {
			return
		}
		b.mu.Lock()
		closed := b.closed
		b.mu.Unlock()
		if closed {
			st.Reset()
			return
		}
		streams.Go(func() { b.stream(st) })
	}
}

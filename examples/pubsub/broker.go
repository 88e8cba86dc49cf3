package main

import (
	"context"
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

	mu       sync.Mutex
	topics   map[string]map[*subscription]struct{}
	sessions map[*mux.Session]struct{}
	closed   bool
	ln       net.Listener
	wg       sync.WaitGroup // sessions and streams
	writers  sync.WaitGroup // subscription writers

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
	return &Broker{SlowTimeout: DefaultSlowTimeout, topics: make(map[string]map[*subscription]struct{}), sessions: make(map[*mux.Session]struct{})}
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (b *Broker) Serve(ln net.Listener) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ln.Close()
	}
	b.ln = ln
	b.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.closed {
				return nil
			}
			return err
		}
		sess, err := mux.Server(conn, nil)
		if err != nil {
			conn.Close()
			return err
		}
		if !b.track(func() { b.sessions[sess] = struct{}{} }) {
			sess.Close()
			sess.Wait()
			continue
		}
		go b.session(sess)
	}
}

// track runs add under the lock and counts one goroutine in wg, unless the broker is closed.
func (b *Broker) track(add func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	add()
	b.wg.Add(1)
	return true
}

// Stats returns a snapshot of the counters.
func (b *Broker) Stats() Stats {
	return Stats{Published: b.published.Load(), Delivered: b.delivered.Load(), Dropped: b.dropped.Load()}
}

// Close stops accepting, lets every subscription's queue drain and end with FIN, then
// closes all sessions and waits for every goroutine.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	var err error
	if b.ln != nil {
		err = b.ln.Close()
	}
	for _, subs := range b.topics {
		for sub := range subs {
			b.dropLocked(sub)
		}
	}
	b.mu.Unlock()
	b.writers.Wait()
	b.mu.Lock()
	sessions := make([]*mux.Session, 0, len(b.sessions))
	for sess := range b.sessions {
		sessions = append(sessions, sess)
	}
	b.mu.Unlock()
	for _, sess := range sessions {
		sess.Close()
	}
	b.wg.Wait()
	return err
}

// session accepts the streams of one client until its session ends.
func (b *Broker) session(sess *mux.Session) {
	defer b.wg.Done()
	for {
		st, err := sess.AcceptStream(context.Background())
		if err != nil {
			break
		}
		if !b.track(func() {}) {
			st.Reset()
			break
		}
		go b.stream(st)
	}
	sess.Close()
	sess.Wait()
	b.mu.Lock()
	delete(b.sessions, sess)
	b.mu.Unlock()
}

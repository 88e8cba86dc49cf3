package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/muxpool/muxpool/mux"
)

// queueSize bounds the messages queued for one subscription; a subscriber that falls this
// far behind loses that subscription rather than slow down the publishers.
const queueSize = 1024

// headerTimeout bounds how long a new stream may take to send its header line.
const headerTimeout = 10 * time.Second

// writeTimeout bounds one write to a subscriber.
const writeTimeout = 5 * time.Second

// Broker fans published lines out to subscribers. Publishers and subscribers connect over
// TCP with one mux session each. Every stream opened to the broker starts with a header
// line: "SUB topic" makes it a subscription to topic (the broker answers "OK topic" and
// then pushes "topic message" lines), "PUB" makes it a publisher stream carrying
// "topic message" lines. The broker answers a publisher's FIN with its own once every
// line before it has been fanned out.
type Broker struct {
	mu       sync.Mutex
	topics   map[string]map[*subscription]struct{}
	sessions map[*mux.Session]struct{}
	closed   bool
	ln       net.Listener
	stats    Stats
	wg       sync.WaitGroup // sessions and streams
	writers  sync.WaitGroup // subscription writers
}

// Stats counts what the broker did.
type Stats struct {
	Published int64 // lines received from publishers
	Delivered int64 // lines queued for subscriptions
	Dropped   int64 // subscriptions dropped for falling behind
}

// subscription is one subscriber stream and the queue its writer drains.
type subscription struct {
	topic string
	out   chan string
}

// NewBroker returns a broker that is not yet serving.
func NewBroker() *Broker {
	return &Broker{topics: make(map[string]map[*subscription]struct{}), sessions: make(map[*mux.Session]struct{})}
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
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
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
	for sess := range b.sessions {
		sess.Close()
	}
	b.mu.Unlock()
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

// stream reads a stream's header and serves it as a subscription or a publisher.
func (b *Broker) stream(st *mux.Stream) {
	defer b.wg.Done()
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(headerTimeout))
	lines := bufio.NewScanner(st)
	if !lines.Scan() {
		st.Reset()
		return
	}
	st.SetReadDeadline(time.Time{})
	header := lines.Text()
	switch topic, ok := strings.CutPrefix(header, "SUB "); {
	case ok && validTopic(topic) == nil:
		b.subscribe(st, lines, topic)
	case header == "PUB":
		for lines.Scan() {
			if topic, msg, ok := strings.Cut(lines.Text(), " "); ok && validTopic(topic) == nil {
				b.publish(topic, msg)
			}
		}
		st.CloseWrite()
	default:
		st.Reset()
	}
}

// subscribe registers st for topic, runs its writer, and ends the subscription when the
// subscriber half-closes or goes away.
func (b *Broker) subscribe(st *mux.Stream, lines *bufio.Scanner, topic string) {
	sub := &subscription{topic: topic, out: make(chan string, queueSize)}
	sub.out <- "OK " + topic
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if b.topics[topic] == nil {
		b.topics[topic] = make(map[*subscription]struct{})
	}
	b.topics[topic][sub] = struct{}{}
	b.writers.Add(1)
	b.mu.Unlock()
	written := make(chan struct{})
	go func() {
		defer b.writers.Done()
		defer close(written)
		for line := range sub.out {
			st.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := st.Write([]byte(line + "\n")); err != nil {
				st.Reset()
				b.unsubscribe(sub)
				for range sub.out { // drain until unsubscribe's close
				}
				return
			}
		}
		st.CloseWrite()
	}()
	for lines.Scan() { // a subscriber sends nothing; FIN or an error ends the subscription
	}
	b.unsubscribe(sub)
	<-written
}

// publish queues "topic msg" for every subscription of topic.
func (b *Broker) publish(topic, msg string) {
	line := topic + " " + msg
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Published++
	for sub := range b.topics[topic] {
		select {
		case sub.out <- line:
			b.stats.Delivered++
		default:
			b.stats.Dropped++
			b.dropLocked(sub)
		}
	}
}

// unsubscribe removes sub if it is still registered.
func (b *Broker) unsubscribe(sub *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[sub.topic][sub]; ok {
		b.dropLocked(sub)
	}
}

// dropLocked removes a registered sub and closes its queue; its writer drains what is
// queued and sends FIN.
func (b *Broker) dropLocked(sub *subscription) {
	delete(b.topics[sub.topic], sub)
	if len(b.topics[sub.topic]) == 0 {
		delete(b.topics, sub.topic)
	}
	close(sub.out)
}

// validTopic accepts 1 to 64 characters without spaces or control characters.
func validTopic(topic string) error {
	if topic == "" || len(topic) > 64 || strings.ContainsAny(topic, " \t\r\n") {
		return errors.New("pubsub: a topic is 1-64 characters without spaces")
	}
	return nil
}

package main

import (
	"bufio"
	"errors"
	"strings"
	"time"

	"github.com/muxpool/muxpool/mux"
)

// stream reads a stream's header and serves it as a subscription or a publisher.
func (b *Broker) stream(st *mux.Stream) {
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
		if lines.Err() != nil { // over-long line or broken stream: do not confirm
			st.Reset()
			return
		}
		st.CloseWrite() // confirms: every line before the publisher's FIN is fanned out
	default:
		st.Reset()
	}
}

// subscribe registers st for topic, runs its writer, and ends the subscription when the
// subscriber half-closes or goes away.
func (b *Broker) subscribe(st *mux.Stream, lines *bufio.Scanner, topic string) {
	sub := &subscription{st: st, topic: topic, out: make(chan string, queueSize), gone: make(chan struct{})}
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
		if b.write(sub, st) {
			st.CloseWrite()
		} else {
			st.Reset()
		}
	}()
	for lines.Scan() { // a subscriber sends nothing; FIN or an error ends the subscription
	}
	b.unsubscribe(sub)
	<-written
}

// write copies sub's queue to st until sub is unregistered, then writes what is still
// queued. It reports false if a write failed.
func (b *Broker) write(sub *subscription, st *mux.Stream) bool {
	send := func(line string) bool {
		st.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := st.Write([]byte(line + "\n"))
		return err == nil
	}
	for {
		select {
		case line := <-sub.out:
			if !send(line) {
				b.unsubscribe(sub)
				return false
			}
		case <-sub.gone:
			for {
				select {
				case line := <-sub.out:
					if !send(line) {
						return false
					}
				default:
					return true
				}
			}
		}
	}
}

// publish queues "topic msg" for every subscription of topic, in the order each
// publisher stream sends. A full queue makes the publisher wait (and so, through mux
// flow control, slows the publishing client) for up to SlowTimeout; then that
// subscription is reset and dropped.
func (b *Broker) publish(topic, msg string) {
	line := topic + " " + msg
	b.published.Add(1)
	b.mu.Lock()
	subs := make([]*subscription, 0, len(b.topics[topic]))
	for sub := range b.topics[topic] {
		subs = append(subs, sub)
	}
	b.mu.Unlock()
	for _, sub := range subs {
		select {
		case sub.out <- line:
			b.delivered.Add(1)
			continue
		default:
		}
		t := time.NewTimer(b.SlowTimeout)
		select {
		case sub.out <- line:
			b.delivered.Add(1)
		case <-sub.gone:
		case <-t.C:
			b.dropped.Add(1)
			b.unsubscribe(sub)
			sub.st.Reset() // its writer is stuck in Write: fail it now
		}
		t.Stop()
	}
}

// unsubscribe unregisters sub if it is still registered.
func (b *Broker) unsubscribe(sub *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[sub.topic][sub]; ok {
		b.dropLocked(sub)
	}
}

// dropLocked unregisters a registered sub and closes gone; its writer writes what is
// queued and sends FIN.
func (b *Broker) dropLocked(sub *subscription) {
	delete(b.topics[sub.topic], sub)
	if len(b.topics[sub.topic]) == 0 {
		delete(b.topics, sub.topic)
	}
	close(sub.gone)
}

// validTopic accepts 1 to 64 characters without spaces or control characters.
func validTopic(topic string) error {
	if topic == "" || len(topic) > 64 || strings.ContainsAny(topic, " \t\r\n") {
		return errors.New("pubsub: a topic is 1-64 characters without spaces")
	}
	return nil
}

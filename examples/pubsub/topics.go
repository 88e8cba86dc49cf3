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

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/muxpool/muxpool/mux"
)

// Conn is one client's connection to the broker: a TCP connection carrying one mux
// session, on which it opens a stream per subscription or publisher.
type Conn struct {
	sess *mux.Session
}

// Dial connects to the broker at addr.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	tc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	sess, err := mux.Client(tc, nil)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return &Conn{sess: sess}, nil
}

// Close ends the session (and every stream on it) and waits for its goroutines.
func (c *Conn) Close() error {
	err := c.sess.Close()
	c.sess.Wait()
	return err
}

// Subscription is one stream receiving the messages of one topic.
type Subscription struct {
	Topic string
	st    *mux.Stream
	r     *bufio.Reader
}

// Subscribe opens a stream for topic and returns once the broker has registered it, so
// every message published afterwards reaches it.
func (c *Conn) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	if err := validTopic(topic); err != nil {
		return nil, err
	}
	st, err := c.sess.Open(ctx)
	if err != nil {
		return nil, err
	}
	s := &Subscription{Topic: topic, st: st, r: bufio.NewReader(st)}
	if _, err := st.Write([]byte("SUB " + topic + "\n")); err != nil {
		st.Reset()
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetReadDeadline(dl)
	}
	if ok, err := s.Next(); err != nil || ok != "OK "+topic {
		st.Reset()
		return nil, fmt.Errorf("pubsub: subscribe %s: got %q, %v", topic, ok, err)
	}
	st.SetReadDeadline(time.Time{})
	return s, nil
}

// Next returns the next line from the broker ("topic message"). io.EOF means the
// subscription ended cleanly (Unsubscribe, or the broker closing) after every queued line.
func (s *Subscription) Next() (string, error) {
	line, err := s.r.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && line != "" {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// Unsubscribe asks the broker to end the subscription; Next then returns what was
// already queued, then io.EOF.
func (s *Subscription) Unsubscribe() error { return s.st.CloseWrite() }

// Publisher is one stream carrying "topic message" lines to the broker.
type Publisher struct {
	st *mux.Stream
}

// Publisher opens a publisher stream.
func (c *Conn) Publisher(ctx context.Context) (*Publisher, error) {
	st, err := c.sess.Open(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write([]byte("PUB\n")); err != nil {
		st.Reset()
		return nil, err
	}
	return &Publisher{st: st}, nil
}

// Publish sends msg to every subscriber of topic. msg is one line.
func (p *Publisher) Publish(topic, msg string) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	if strings.ContainsAny(msg, "\r\n") {
		return errors.New("pubsub: a message is one line")
	}
	_, err := p.st.Write([]byte(topic + " " + msg + "\n"))
	return err
}

// Close ends the publisher stream and waits, bounded by ctx, until the broker confirms
// that every published line has been handed to the subscriptions.
func (p *Publisher) Close(ctx context.Context) error {
	if err := p.st.CloseWrite(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		p.st.SetReadDeadline(dl)
	}
	_, err := io.Copy(io.Discard, p.st)
	p.st.Close()
	return err
}

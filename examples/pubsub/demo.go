package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// runDemo runs a broker, three subscribers (news; sports; both, on one session) and two
// publishers that each send m messages alternating between the topics. It prints every
// delivery and stops once the broker has drained every subscription.
func runDemo(ctx context.Context, m int, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b := NewBroker()
	go b.Serve(ln)
	defer b.Close()
	addr := ln.Addr().String()
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, format+"\n", args...)
	}
	say("broker on %s", addr)

	var conns []*Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() (*Conn, error) {
		c, err := Dial(ctx, addr)
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	var wg sync.WaitGroup
	var errsMu sync.Mutex
	var errs []error
	for i, topics := range [][]string{{"news"}, {"sports"}, {"news", "sports"}} {
		c, err := dial()
		if err != nil {
			return err
		}
		for _, topic := range topics {
			s, err := c.Subscribe(ctx, topic)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("sub%d/%s", i+1, topic)
			say("[%s] subscribed", name)
			wg.Go(func() {
				n := 0
				for {
					line, err := s.Next()
					if errors.Is(err, io.EOF) {
						say("[%s] end after %d messages", name, n)
						return
					}
					if err != nil {
						errsMu.Lock()
						errs = append(errs, fmt.Errorf("%s: %w", name, err))
						errsMu.Unlock()
						return
					}
					n++
					say("[%s] %s", name, line)
				}
			})
		}
	}
	stopOnCancel := context.AfterFunc(ctx, func() { b.Close() })
	defer stopOnCancel()

	var pubs sync.WaitGroup
	for i := range 2 {
		c, err := dial()
		if err != nil {
			return err
		}
		p, err := c.Publisher(ctx)
		if err != nil {
			return err
		}
		pubs.Go(func() {
			topics := []string{"news", "sports"}
			for k := range m {
				if err := p.Publish(topics[k%2], fmt.Sprintf("p%d#%d", i+1, k+1)); err != nil {
					return
				}
			}
			p.Close(ctx)
		})
	}
	pubs.Wait()
	b.Close() // drains every subscription, then ends it with FIN
	wg.Wait()
	st := b.Stats()
	say("published=%d delivered=%d dropped=%d", st.Published, st.Delivered, st.Dropped)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

package mux

import (
	"context"
	"io"
	"testing"
	"time"

	lp "github.com/libp2p/go-yamux/v5"
)

// The peer in this file's helpers is the real github.com/libp2p/go-yamux/v5 module ("LP"), over
// loopback TCP. LP differs from hashicorp/yamux where it matters for ending streams and
// sessions: its Close also ends reading, it has Reset, and it takes any GoAway as the end of
// the session.

// lpConfig is go-yamux's default config with logging and keepalive off.
func lpConfig() *lp.Config {
	c := lp.DefaultConfig()
	c.LogOutput = io.Discard
	c.EnableKeepAlive = false
	c.ConnectionWriteTimeout = 5 * time.Second
	return c
}

// lpPair is one mux session and one go-yamux session connected over loopback TCP.
type lpPair struct {
	ours   *Session
	theirs *lp.Session
}

// newLPPair connects a mux session (client if ourClient; nil ours means interopConfig) with a
// go-yamux session in the other role. Both end with the test.
func newLPPair(t testing.TB, ourClient bool, ours *Config) *lpPair {
	t.Helper()
	if ours == nil {
		ours = interopConfig()
	}
	cc, sc := tcpPair(t)
	var p lpPair
	var err error
	if ourClient {
		p.ours, err = Client(cc, ours)
		if err == nil {
			p.theirs, err = lp.Server(sc, lpConfig(), nil)
		}
	} else {
		p.ours, err = Server(sc, ours)
		if err == nil {
			p.theirs, err = lp.Client(cc, lpConfig(), nil)
		}
	}
	if err != nil {
		cc.Close()
		sc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.theirs.Close()
		p.ours.Close()
		p.ours.Wait()
		<-p.theirs.CloseChan()
	})
	return &p
}

// theirAccept accepts one stream on the go-yamux side within d.
func (p *lpPair) theirAccept(t testing.TB, d time.Duration) *lp.Stream {
	t.Helper()
	type result struct {
		st  *lp.Stream
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := p.theirs.AcceptStream()
		ch <- result{st, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("their AcceptStream: %v", r.err)
		}
		return r.st
	case <-time.After(d):
		t.Fatalf("their AcceptStream: nothing within %v", d)
		return nil
	}
}

// openToLP opens a stream on the mux side (Open sends the SYN at once) and accepts it on the
// go-yamux side.
func openToLP(t testing.TB, p *lpPair) (*Stream, *lp.Stream) {
	t.Helper()
	st, err := p.ours.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st, p.theirAccept(t, 5*time.Second)
}

package demux

import (
	"context"
	"sync"
	"time"
)

// clientShares enforces Config.MaxStreamsPerClient: each client connection, known by
// its remote address (unique per connection, and the same for every stream of an
// HTTP/2 connection), holds at most max upstream streams; its further requests wait
// in arrival order (a channel's senders are served FIFO). It needs no hook into the
// server, so it holds whatever serves the Proxy. Only HTTP/2 client connections use
// it: an HTTP/1.x connection carries one request at a time.
//
// mu guards the map; an entry lives while requests of its connection hold or wait
// for a slot.
type clientShares struct {
	max int // <= 0: no limit
	mu  sync.Mutex
	m   map[string]*clientShare
}

type clientShare struct {
	slots chan struct{} // one element per stream held
	refs  int           // requests holding or waiting; guarded by clientShares.mu
}

func newClientShares(max int) *clientShares {
	return &clientShares{max: max, m: map[string]*clientShare{}}
}

// acquire takes a slot for the connection at addr, waiting until deadline
// (ErrQueueTimeout) or ctx's end. release gives it back.
func (cs *clientShares) acquire(ctx context.Context, addr string, deadline time.Time) (release func(), err error) {
	if cs.max <= 0 {
		return func() {}, nil
	}
	cs.mu.Lock()
	sh := cs.m[addr]
	if sh == nil {
		sh = &clientShare{slots: make(chan struct{}, cs.max)}
		cs.m[addr] = sh
	}
	sh.refs++
	cs.mu.Unlock()
	select {
	case sh.slots <- struct{}{}:
	default:
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case sh.slots <- struct{}{}:
		case <-ctx.Done():
			err = ctx.Err()
		case <-t.C:
			err = ErrQueueTimeout
		}
	}
	if err != nil {
		cs.drop(addr, sh)
		return nil, err
	}
	return func() {
		<-sh.slots
		cs.drop(addr, sh)
	}, nil
}

func (cs *clientShares) drop(addr string, sh *clientShare) {
	cs.mu.Lock()
	if sh.refs--; sh.refs == 0 {
		delete(cs.m, addr)
	}
	cs.mu.Unlock()
}

package demux

import (
	"container/list"
	"context"
	"errors"
	"net/http"
	"time"
)

// uconn is one upstream connection. Fields after cc are guarded by upstream.mu.
type uconn struct {
	u  *upstream
	id uint64
	cc *http.ClientConn

	inUse     int    // reservations handed out by this pool
	limit     int    // streams allowed: 1 until settled
	settled   bool   // the peer's stream limit is known
	draining  bool   // GOAWAY or unusable: no new streams, close when idle
	dead      bool   // Err() != nil
	blocked   bool   // Reserve failed at the client's own limit; wait for the state hook
	sawGoAway bool   // a GOAWAY was counted for this conn
	seq       uint64 // requests sent on this conn
}

type waiter struct {
	ch   chan waitResult // buffered 1
	elem *list.Element   // nil once dequeued
}

type waitResult struct {
	uc  *uconn
	err error
}

// wake is a waiter's result, delivered after mu is released.
type wake struct {
	w *waiter
	r waitResult
}

// unlockAndWake ends every u.mu section that may free a stream or fail waiters: it
// closes out dead and idle draining conns, hands free streams to waiters in FIFO
// order and starts dials, then unlocks and only then delivers the results and closes
// the conns it took out.
func (u *upstream) unlockAndWake() {
	toClose := u.reapLocked()
	u.dispatchLocked()
	wakes := u.wakes
	u.wakes = nil
	u.mu.Unlock()
	for _, w := range wakes {
		w.w.ch <- w.r
	}
	u.closeAsync(toClose)
}

// acquire returns a conn with one of its streams counted as ours (inUse), waiting in
// the FIFO queue when none is free. front puts a retried request at the queue's head.
func (u *upstream) acquire(ctx context.Context, front bool) (uc *uconn, waited bool, err error) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil, false, ErrClosed
	}
	if front || u.waitq.Len() == 0 {
		if uc := u.pickLocked(); uc != nil {
			uc.inUse++
			u.mu.Unlock()
			return uc, false, nil
		}
	}
	if u.waitq.Len() >= u.cfg.MaxQueued {
		u.mu.Unlock()
		u.st.queueFull.Add(1)
		return nil, false, ErrQueueFull
	}
	w := &waiter{ch: make(chan waitResult, 1)}
	if front {
		w.elem = u.waitq.PushFront(w)
	} else {
		w.elem = u.waitq.PushBack(w)
	}
	u.maybeDialLocked()
	u.mu.Unlock()

	t := time.NewTimer(u.cfg.QueueTimeout)
	defer t.Stop()
	select {
	case r := <-w.ch:
		return r.uc, true, r.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = ErrQueueTimeout
		u.st.queueTimeouts.Add(1)
	}
	u.mu.Lock()
	if w.elem != nil {
		u.waitq.Remove(w.elem)
		w.elem = nil
		u.mu.Unlock()
		return nil, true, err
	}
	u.mu.Unlock()
	// Dispatched while we gave up: hand the stream back.
	if r := <-w.ch; r.uc != nil {
		u.release(r.uc)
	}
	return nil, true, err
}

// pickLocked returns the least-loaded conn with a free stream, or nil.
func (u *upstream) pickLocked() *uconn {
	var best *uconn
	for _, uc := range u.conns {
		if uc.dead || uc.draining || uc.blocked || uc.inUse >= uc.limit {
			continue
		}
		if best == nil || uc.inUse < best.inUse {
			best = uc
		}
	}
	return best
}

// dispatchLocked hands free streams to waiters in FIFO order, then dials if waiters
// remain. The waiters are woken by unlockAndWake.
func (u *upstream) dispatchLocked() {
	for u.waitq.Len() > 0 {
		uc := u.pickLocked()
		if uc == nil {
			break
		}
		w := u.waitq.Remove(u.waitq.Front()).(*waiter)
		w.elem = nil
		uc.inUse++
		u.wakes = append(u.wakes, wake{w, waitResult{uc: uc}})
	}
	u.maybeDialLocked()
}

// failWaitersLocked ends every queued request with err (woken by unlockAndWake).
func (u *upstream) failWaitersLocked(err error) {
	for u.waitq.Len() > 0 {
		w := u.waitq.Remove(u.waitq.Front()).(*waiter)
		w.elem = nil
		u.wakes = append(u.wakes, wake{w, waitResult{err: err}})
	}
}

// maybeDialLocked starts dials while requests wait and the cap allows. Draining conns
// do not count against MaxConns: they take no new streams and close when idle.
// HTTP/2 dials one conn at a time and only once every open conn is settled and full,
// so that a burst never opens more conns than the peer's limits require.
func (u *upstream) maybeDialLocked() {
	if u.closed || u.waitq.Len() == 0 {
		return
	}
	live, unsettled, spare := 0, false, false
	for _, uc := range u.conns {
		if uc.dead || uc.draining {
			continue
		}
		live++
		unsettled = unsettled || !uc.settled
		spare = spare || uc.inUse < uc.limit
	}
	if !u.proto.multiplexed() {
		for need := u.waitq.Len() - u.dialing; need > 0 && live+u.dialing < u.cfg.MaxConns; need-- {
			u.startDialLocked()
		}
		return
	}
	if live+u.dialing < u.cfg.MaxConns && u.dialing == 0 && !unsettled && !spare {
		u.startDialLocked()
	}
}

func (u *upstream) startDialLocked() {
	u.dialing++
	u.nextID++
	uc := &uconn{u: u, id: u.nextID}
	uc.limit, uc.settled = u.proto.initial()
	u.wg.Add(1)
	go u.dial(uc)
}

func (u *upstream) dial(uc *uconn) {
	defer u.wg.Done()
	ctx, cancel := context.WithTimeout(u.ctx, u.cfg.DialTimeout)
	defer cancel()
	u.st.dials.Add(1)
	cc, err := u.transportFor(uc).NewClientConn(ctx, u.proto.scheme(), u.addr)

	u.mu.Lock()
	u.dialing--
	if err != nil {
		u.st.dialErrors.Add(1)
		derr := &DialError{Addr: u.addr, Err: err}
		// Nothing else will serve the queue soon: fail it now rather than at QueueTimeout.
		if !u.hasLiveLocked() && u.dialing == 0 {
			u.failWaitersLocked(derr)
		}
		u.unlockAndWake()
		u.log.Debug("demux: upstream dial failed", "addr", u.addr, "err", err)
		return
	}
	if u.closed {
		u.mu.Unlock()
		cc.Close()
		return
	}
	uc.cc = cc
	u.conns = append(u.conns, uc)
	u.unlockAndWake()
	u.log.Debug("demux: upstream conn open", "conn", uc.id, "proto", u.proto.String())
	cc.SetStateHook(func(*http.ClientConn) { u.onState(uc) })
	u.proto.opened(u, uc)
}

func (u *upstream) hasLiveLocked() bool {
	for _, uc := range u.conns {
		if !uc.dead && !uc.draining {
			return true
		}
	}
	return false
}

// reapLocked removes dead conns and idle draining ones; the caller must pass them to
// closeAsync. The WaitGroup is counted here, under u.mu, so that close's Wait (which
// follows its own u.mu section) cannot miss them.
func (u *upstream) reapLocked() []*uconn {
	var out []*uconn
	kept := u.conns[:0]
	for _, uc := range u.conns {
		if uc.dead || (uc.draining && uc.inUse == 0) {
			out = append(out, uc)
			continue
		}
		kept = append(kept, uc)
	}
	clear(u.conns[len(kept):])
	u.conns = kept
	u.wg.Add(len(out))
	return out
}

// closeAsync closes conns returned by reapLocked off the caller's goroutine: the
// caller may be the conn's own read loop (frame sniffer) or state hook.
func (u *upstream) closeAsync(ucs []*uconn) {
	for _, uc := range ucs {
		go func() {
			defer u.wg.Done()
			uc.cc.Close()
			u.log.Debug("demux: upstream conn closed", "conn", uc.id)
		}()
	}
}

// release returns one stream of uc to the pool.
func (u *upstream) release(uc *uconn) {
	err := uc.cc.Err()
	u.mu.Lock()
	uc.inUse--
	if err != nil {
		u.markDeadLocked(uc)
	}
	u.unlockAndWake()
}

// reserveFailed handles a Reserve refusal after the pool counted a free stream: the
// conn died, stopped taking streams (GOAWAY), or still counts a finished or reset
// stream (RFC 9113 §5.1.2 accounting lags our release); the last clears on its state hook.
func (u *upstream) reserveFailed(uc *uconn) {
	err, avail, inFlight := uc.cc.Err(), uc.cc.Available(), uc.cc.InFlight()
	u.mu.Lock()
	uc.inUse--
	switch {
	case err != nil:
		u.markDeadLocked(uc)
	case avail == 0 && inFlight == 0:
		u.markDrainingLocked(uc)
	default:
		uc.blocked = true
	}
	u.unlockAndWake()
	if uc.cc.Available() > 0 { // the hook may have fired before blocked was set
		u.onState(uc)
	}
}

// markDeadLocked records that uc's connection failed. One that failed before its
// peer's SETTINGS arrived never worked (wrong protocol, refused preface): it counts
// as a failed dial and, if nothing else can serve the queue, fails it now instead of
// redialling in a loop until QueueTimeout.
func (u *upstream) markDeadLocked(uc *uconn) {
	if uc.dead {
		return
	}
	uc.dead = true
	if uc.settled {
		return
	}
	u.st.dialErrors.Add(1)
	if !u.hasLiveLocked() && u.dialing == 0 {
		u.failWaitersLocked(&DialError{Addr: u.addr, Err: errNoSettings})
	}
}

// errNoSettings: the upstream closed an HTTP/2 connection before sending SETTINGS.
var errNoSettings = errors.New("connection closed before the peer's HTTP/2 SETTINGS (is the upstream speaking h2c?)")

func (u *upstream) markDrainingLocked(uc *uconn) {
	if !uc.draining && !uc.sawGoAway && u.proto.hidesGoAway() {
		// Under TLS a graceful GOAWAY is only visible as a conn that stops taking streams.
		uc.sawGoAway = true
		u.st.goAways.Add(1)
	}
	uc.draining = true
}

// onState is the ClientConn state hook: a stream ended, capacity grew, or the conn died.
func (u *upstream) onState(uc *uconn) {
	err, avail, inFlight := uc.cc.Err(), uc.cc.Available(), uc.cc.InFlight()
	u.mu.Lock()
	switch {
	case err != nil:
		u.markDeadLocked(uc)
	case avail == 0 && inFlight == 0 && uc.limit > 0 && u.proto.multiplexed():
		u.markDrainingLocked(uc)
	}
	uc.blocked = false
	u.unlockAndWake()
}

// settings implements frameEvents: the peer's SETTINGS fix the conn's stream limit
// at min(MaxStreamsPerConn, SETTINGS_MAX_CONCURRENT_STREAMS).
func (uc *uconn) settings(maxStreams uint32, has bool) {
	u := uc.u
	limit := u.cfg.MaxStreamsPerConn
	if has && int64(maxStreams) < int64(limit) {
		limit = int(maxStreams)
	}
	u.mu.Lock()
	uc.limit, uc.settled = limit, true
	u.unlockAndWake()
}

// goAway implements frameEvents (RFC 9113 §6.8): no new streams on this conn; streams
// above lastStreamID fail with a retryable error and are re-sent elsewhere.
func (uc *uconn) goAway(lastStreamID, code uint32) {
	u := uc.u
	u.st.goAways.Add(1)
	u.mu.Lock()
	uc.sawGoAway = true
	uc.draining = true
	u.unlockAndWake()
	u.log.Debug("demux: upstream GOAWAY", "conn", uc.id, "last_stream", lastStreamID, "code", code)
}

// rstStream implements frameEvents: the upstream reset a stream (RFC 9113 §6.4).
func (uc *uconn) rstStream(code uint32) { uc.u.st.resets.Add(1) }

// close fails waiters, closes every conn and waits for the pool's goroutines.
func (u *upstream) close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	u.failWaitersLocked(ErrClosed)
	conns := u.conns
	u.conns = nil
	u.unlockAndWake()
	u.cancel()
	for _, uc := range conns {
		uc.cc.Close()
	}
	u.wg.Wait()
}

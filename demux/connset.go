package demux

import (
	"container/list"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"
)

// uconn is one upstream connection. Fields after cc are guarded by upstream.mu.
type uconn struct {
	u  *upstream
	t  *target
	id uint64
	cc *http.ClientConn

	inUse    int  // reservations handed out by this pool
	limit    int  // streams allowed: 1 until settled
	settled  bool // the peer's stream limit is known
	draining bool // GOAWAY or unusable: no new streams, close when idle
	dead     bool // Err() != nil
	blocked  bool // Reserve failed at the client's own limit; wait for the state hook
	// wantHook is blocked's lock-free mirror for the state hook's fast path.
	wantHook  atomic.Bool
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
			u.takeLocked(uc)
			if len(u.targets) > 1 {
				u.warmLocked()
			}
			u.mu.Unlock()
			return uc, false, nil
		}
	}
	if !u.hopefulLocked() {
		err := u.downErrLocked() // every target ejected or gone: 502 now, not at QueueTimeout
		u.mu.Unlock()
		return nil, false, err
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
	u.maybeDialLocked(true)
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
		u.release(r.uc, false)
	}
	return nil, true, err
}

// putLocked counts one stream fewer in use on uc (takeLocked's inverse).
func (u *upstream) putLocked(uc *uconn) {
	uc.inUse--
	uc.t.inUse--
}

// takeLocked counts one more stream in use on uc, and spreads load to another
// connection when uc has its share (spreadLocked).
func (u *upstream) takeLocked(uc *uconn) {
	uc.inUse++
	uc.t.inUse++
	if u.spread > 1 && uc.inUse >= max(1, uc.limit/u.spread) {
		u.spreadLocked(uc.t)
	}
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
		u.takeLocked(uc)
		u.wakes = append(u.wakes, wake{w, waitResult{uc: uc}})
	}
	u.maybeDialLocked(false)
}

// failWaitersLocked ends every queued request with err (woken by unlockAndWake).
func (u *upstream) failWaitersLocked(err error) {
	for u.waitq.Len() > 0 {
		w := u.waitq.Remove(u.waitq.Front()).(*waiter)
		w.elem = nil
		u.wakes = append(u.wakes, wake{w, waitResult{err: err}})
	}
}

// maybeDialLocked starts dials while requests wait and the caps allow: per target,
// MaxConns connections, not counting draining ones (they take no new streams and
// close when idle). HTTP/1.1 dials a connection per waiting request, on the usable
// target with the fewest; HTTP/2 dials one connection at a time, only once every
// open one is settled and full, on the usable target with the fewest, so that a
// burst never opens more connections than the peers' limits require. probe allows a
// target whose last dial failed (a new request may try it again; the requests
// already waiting do not retry it in a loop).
func (u *upstream) maybeDialLocked(probe bool) {
	if u.closed || u.waitq.Len() == 0 {
		return
	}
	now := time.Now()
	dialing := 0
	for _, t := range u.targets {
		dialing += t.dialing
		if !u.proto.multiplexed() {
			continue
		}
		for _, uc := range t.conns {
			if !uc.dead && !uc.draining && t.usable(now) && (!uc.settled || uc.inUse < uc.limit) {
				return // a stream frees or a limit becomes known soon
			}
		}
	}
	need := 1
	if !u.proto.multiplexed() {
		need = u.waitq.Len() - dialing
	} else if dialing > 0 {
		return
	}
	for ; need > 0; need-- {
		var best *target
		for _, t := range u.targets {
			n := t.live() + t.dialing
			if !t.usable(now) || n >= u.cfg.MaxConns || (!probe && t.fails > 0 && t.live() == 0) {
				continue
			}
			if best == nil || n < best.live()+best.dialing {
				best = t
			}
		}
		if best == nil {
			return
		}
		u.startDialLocked(best)
	}
}

// spreadLocked dials another HTTP/2 connection to t, before any is full, when every
// open one carries its share of streams: its limit divided by u.spread, the number
// of connections the machine's cores can keep busy (GOMAXPROCS/2, at least 1, at
// most MaxConns). One connection's read loop and write lock serialise its streams;
// on two cores one connection is fastest (measured: a second one costs 5-10 %), on
// more cores several read loops run in parallel.
func (u *upstream) spreadLocked(t *target) {
	if t.dialing > 0 || t.live() >= u.spread {
		return
	}
	for _, uc := range t.conns {
		if !uc.dead && !uc.draining && (!uc.settled || uc.inUse < max(1, uc.limit/u.spread)) {
			return
		}
	}
	u.startDialLocked(t)
}

// warmLocked gives every usable target without a connection its first one, so that
// load spreads over all targets without waiting for a queue to form. A target that
// lost its connections is dialled again the same way: failures in a row eject it, so
// a dead one is retried after growing backoffs only.
func (u *upstream) warmLocked() {
	now := time.Now()
	for _, t := range u.targets {
		if t.usable(now) && t.dialing == 0 && t.live() == 0 {
			u.startDialLocked(t)
		}
	}
}

func (u *upstream) startDialLocked(t *target) {
	t.dialing++
	u.nextID++
	uc := &uconn{u: u, t: t, id: u.nextID}
	uc.limit, uc.settled = u.proto.initial()
	u.wg.Add(1)
	go u.dial(uc)
}

func (u *upstream) dial(uc *uconn) {
	defer u.wg.Done()
	t := uc.t
	ctx, cancel := context.WithTimeout(u.ctx, u.cfg.DialTimeout)
	defer cancel()
	u.st.dials.Add(1)
	t.dials.Add(1)
	cc, err := u.transportFor(uc).NewClientConn(ctx, u.proto.scheme(), t.addr)

	u.mu.Lock()
	t.dialing--
	if err != nil {
		u.st.dialErrors.Add(1)
		t.dialErrors.Add(1)
		u.failedLocked(t, &DialError{Addr: t.addr, Err: err})
		u.maybeDialLocked(false) // other targets
		// Nothing else will serve the queue soon: fail it now rather than at QueueTimeout.
		if !u.servableLocked() {
			u.failWaitersLocked(u.downErrLocked())
		}
		u.unlockAndWake()
		u.log.Debug("demux: upstream dial failed", "addr", t.addr, "err", err)
		return
	}
	if u.closed {
		u.mu.Unlock()
		cc.Close()
		return
	}
	uc.cc = cc
	t.conns = append(t.conns, uc)
	u.unlockAndWake()
	u.log.Debug("demux: upstream conn open", "conn", uc.id, "target", t.addr, "proto", u.proto.String())
	cc.SetStateHook(func(*http.ClientConn) { u.onState(uc) })
	u.proto.opened(u, uc)
}

// reapLocked removes dead conns and idle draining ones, and targets that are gone and
// have none left; the caller must pass the conns to closeAsync. The WaitGroup is
// counted here, under u.mu, so that close's Wait (which follows its own u.mu section)
// cannot miss them.
func (u *upstream) reapLocked() []*uconn {
	var out []*uconn
	keptT := u.targets[:0]
	for _, t := range u.targets {
		kept := t.conns[:0]
		for _, uc := range t.conns {
			if uc.dead || (uc.draining && uc.inUse == 0) {
				out = append(out, uc)
				continue
			}
			kept = append(kept, uc)
		}
		clear(t.conns[len(kept):])
		t.conns = kept
		if t.gone && len(t.conns) == 0 && t.dialing == 0 {
			continue
		}
		keptT = append(keptT, t)
	}
	clear(u.targets[len(keptT):])
	u.targets = keptT
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

// release returns one stream of uc to the pool; served reports a request that got
// its response, which ends its target's failure run.
func (u *upstream) release(uc *uconn, served bool) {
	err := uc.cc.Err()
	u.mu.Lock()
	u.putLocked(uc)
	switch {
	case err != nil:
		u.markDeadLocked(uc)
	case served:
		u.succeededLocked(uc.t)
	}
	u.unlockAndWake()
}

// reserveFailed handles a Reserve refusal after the pool counted a free stream: the
// conn died, stopped taking streams (GOAWAY), or still counts a finished or reset
// stream (RFC 9113 §5.1.2 accounting lags our release); the last clears on its state hook.
func (u *upstream) reserveFailed(uc *uconn) {
	err, avail, inFlight := uc.cc.Err(), uc.cc.Available(), uc.cc.InFlight()
	u.mu.Lock()
	u.putLocked(uc)
	switch {
	case err != nil:
		u.markDeadLocked(uc)
	case avail == 0 && inFlight == 0:
		u.markDrainingLocked(uc)
	default:
		uc.blocked = true
		uc.wantHook.Store(true)
	}
	u.unlockAndWake()
	if uc.cc.Available() > 0 { // the hook may have fired before blocked was set
		u.onState(uc)
	}
}

// markDeadLocked records that uc's connection failed, a failure of its target. One
// that failed before its peer's SETTINGS arrived never worked (wrong protocol,
// refused preface): it counts as a failed dial and, if nothing else can serve the
// queue, fails it now instead of redialling in a loop until QueueTimeout.
func (u *upstream) markDeadLocked(uc *uconn) {
	if uc.dead {
		return
	}
	uc.dead = true
	if uc.settled {
		u.failedLocked(uc.t, errConnLost)
		return
	}
	u.st.dialErrors.Add(1)
	uc.t.dialErrors.Add(1)
	u.failedLocked(uc.t, &DialError{Addr: uc.t.addr, Err: errNoSettings})
	if !u.servableLocked() {
		u.failWaitersLocked(u.downErrLocked())
	}
}

// errNoSettings: the upstream closed an HTTP/2 connection before sending SETTINGS.
var errNoSettings = errors.New("connection closed before the peer's HTTP/2 SETTINGS (is the upstream speaking h2c?)")

// errConnLost: an established upstream connection failed.
var errConnLost = errors.New("upstream connection lost")

// errGoAway: the upstream sent GOAWAY (RFC 9113 §6.8).
var errGoAway = errors.New("upstream sent GOAWAY")

// errNoTargets: the upstream's name resolved to no address yet.
var errNoTargets = errors.New("no upstream address")

func (u *upstream) markDrainingLocked(uc *uconn) {
	if !uc.draining && !uc.sawGoAway && u.proto.hidesGoAway() {
		// Under TLS a graceful GOAWAY is only visible as a conn that stops taking streams.
		uc.sawGoAway = true
		u.st.goAways.Add(1)
	}
	uc.draining = true
}

// onState is the ClientConn state hook: a stream ended, capacity grew, or the conn died.
// It runs at the end of every stream; when the connection is alive, can take a stream
// and was not blocked, nothing the pool tracks changed (release has already given the
// stream back), so it returns without the pool's lock.
func (u *upstream) onState(uc *uconn) {
	err, avail, inFlight := uc.cc.Err(), uc.cc.Available(), uc.cc.InFlight()
	if err == nil && avail > 0 && !uc.wantHook.Load() {
		return
	}
	u.mu.Lock()
	switch {
	case err != nil:
		u.markDeadLocked(uc)
	case avail == 0 && inFlight == 0 && uc.limit > 0 && u.proto.multiplexed():
		u.markDrainingLocked(uc)
	}
	uc.blocked = false
	uc.wantHook.Store(false)
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
	u.failedLocked(uc.t, errGoAway)
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
	var conns []*uconn
	for _, t := range u.targets {
		conns = append(conns, t.conns...)
		t.conns = nil
	}
	u.unlockAndWake()
	u.cancel()
	for _, uc := range conns {
		uc.cc.Close()
	}
	u.wg.Wait()
}

package demux

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Passive health (outlier ejection, as Envoy's consecutive failures and HAProxy's
// observe/error-limit): a target with ejectAfter failures in a row takes no new
// streams for a backoff that starts at ejectBase and doubles per ejection in a row,
// up to ejectMax. After it, one dial (or request) probes it: a success ends the run,
// a failure ejects it again for twice as long.
const (
	ejectAfter = 3
	ejectBase  = time.Second
	ejectMax   = 30 * time.Second
)

// target is one upstream address (host:port, an IP after resolution) with its own
// connections and health. Fields are guarded by upstream.mu; counters are atomics.
type target struct {
	addr  string
	conns []*uconn
	// dialing counts connections being established; inUse, streams held on conns.
	dialing, inUse int
	// gone: no longer resolved. It takes no new streams and leaves the set once it
	// has no connections.
	gone bool

	fails      int       // failures in a row: dial errors, dead conns, GOAWAY, REFUSED_STREAM
	ejections  int       // ejections in a row, for the backoff
	ejectedTil time.Time // no new streams before this
	lastErr    error     // the last failure, for the 502 when every target is down

	requests, dials, dialErrors, ejected atomic.Uint64
}

// usable reports whether t may take new streams and connections at now.
func (t *target) usable(now time.Time) bool {
	return !t.gone && !now.Before(t.ejectedTil)
}

// live counts t's connections that take streams.
func (t *target) live() int {
	n := 0
	for _, uc := range t.conns {
		if !uc.dead && !uc.draining {
			n++
		}
	}
	return n
}

// freeConn returns t's least-loaded connection with a free stream, or nil.
func (t *target) freeConn() *uconn {
	var best *uconn
	for _, uc := range t.conns {
		if uc.dead || uc.draining || uc.blocked || uc.inUse >= uc.limit {
			continue
		}
		if best == nil || uc.inUse < best.inUse {
			best = uc
		}
	}
	return best
}

// pickLocked chooses the stream for the next request: among the usable targets with
// a free stream, the one with fewer streams in use of two picked at random (power of
// two choices), then its least-loaded connection. Nil when no stream is free.
func (u *upstream) pickLocked() *uconn {
	now := time.Now()
	var buf [8]*uconn
	cands := buf[:0]
	for _, t := range u.targets {
		if !t.usable(now) {
			continue
		}
		if uc := t.freeConn(); uc != nil {
			cands = append(cands, uc)
		}
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	i := rand.IntN(len(cands))
	j := rand.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	if a, b := cands[i], cands[j]; b.t.inUse < a.t.inUse {
		return b
	}
	return cands[i]
}

// failedLocked records a failure of t and ejects it at the ejectAfter-th in a row.
func (u *upstream) failedLocked(t *target, err error) {
	t.fails++
	t.lastErr = err
	now := time.Now()
	if t.fails < ejectAfter || now.Before(t.ejectedTil) {
		return
	}
	backoff := ejectMax
	if t.ejections < 5 {
		backoff = min(ejectBase<<t.ejections, ejectMax)
	}
	t.ejections++
	t.ejectedTil = now.Add(backoff)
	t.ejected.Add(1)
	u.log.Warn("demux: upstream target ejected", "target", t.addr, "for", backoff, "err", err)
}

// succeededLocked records a request served by t: its failure run is over.
func (u *upstream) succeededLocked(t *target) {
	t.fails, t.ejections = 0, 0
}

// downErrLocked is the error for a request when no target can serve: every one is
// ejected, gone or failing to connect.
func (u *upstream) downErrLocked() error {
	var last *target
	for _, t := range u.targets {
		if t.lastErr != nil {
			last = t
		}
	}
	if last == nil {
		return &DialError{Addr: u.name, Err: errNoTargets}
	}
	return &DialError{Addr: last.addr, Err: last.lastErr}
}

// servableLocked reports whether the requests already waiting can still be served:
// some target has a dial in flight or a usable live connection, or the upstream's
// name is not resolved yet.
func (u *upstream) servableLocked() bool {
	now := time.Now()
	for _, t := range u.targets {
		if t.dialing > 0 || (t.usable(now) && t.live() > 0) {
			return true
		}
	}
	return !u.resolved
}

// hopefulLocked reports whether a new request should wait for a stream: some target
// is usable or being dialled, or the name is not resolved yet. Otherwise every target
// is ejected or gone, and the request fails at once.
func (u *upstream) hopefulLocked() bool {
	now := time.Now()
	for _, t := range u.targets {
		if t.dialing > 0 || t.usable(now) {
			return true
		}
	}
	return !u.resolved
}

package mux

import "time"

// memBudget is a session's receive-memory budget in bytes (Config.MaxSessionMemory). Streams
// reserve their whole receive window from it before granting it, so the data the peer may
// legitimately have in flight or buffered never exceeds the budget. Guarded by s.mu.
type memBudget struct {
	limit int64
	used  int64
}

// reserve takes n bytes from the budget; false if they are not there.
func (m *memBudget) reserve(n int64) bool {
	if m.used+n > m.limit {
		return false
	}
	m.used += n
	return true
}

func (m *memBudget) release(n int64) { m.used -= n }

// creditLocked accounts n bytes just read and decides the window credit to send back: none
// until at least half the window is free again (one WindowUpdate per half window, as
// hashicorp/yamux does), then everything free. Before granting, the window may double
// (auto-tuning). s.mu must be held.
func (s *Session) creditLocked(st *Stream, n int) uint32 {
	st.readTotal += uint64(n)
	if st.recv != recvOpen {
		return 0
	}
	// The window is what the peer may send, what it sent that is still on its way to the
	// buffer (the rest of a frame being read), and what is buffered.
	used := int64(st.outstanding) + int64(st.pending) + int64(st.buf.len())
	if st.reserved > int64(st.window) && used <= int64(st.window) {
		// A growth was taken back (autoTuneLocked): the credit for it is used up, so
		// the memory it reserved is free.
		s.mem.release(st.reserved - int64(st.window))
		st.reserved = int64(st.window)
	}
	if int64(st.window)-used < int64(st.window/2) {
		return 0
	}
	s.autoTuneLocked(st, s.now())
	// A growth taken back just now at most halves the window, and used is at most half the
	// window before it (the check above), so delta is not negative; were it ever, as a uint32
	// it would grant the peer 4 GiB.
	delta := max(int64(st.window)-used, 0)
	st.outstanding += uint32(delta)
	return uint32(delta)
}

// minTuneEpoch is the shortest stretch of reading that auto-tuning judges. A reader draining a
// backlog consumes half a window in microseconds; judged over so short a time that burst looks
// like a fast link, and windows would grow on loopback, where they only lengthen the queues a
// small stream waits behind.
const minTuneEpoch = time.Millisecond

// growthPays is how much faster a stream must be read in the epoch after its window doubled for
// the growth to stay: a sender held back by the window sends about twice as fast with twice
// the window; one held back by anything else (the CPU, on loopback) does not, and a larger
// window then only lengthens the queues other streams' frames wait behind. The bar is above
// the third by which a loopback bulk stream's rate moves from run to run on a busy machine: at
// 1.2, such a stream kept a 512 KiB window in about one run of six, and a small stream's echo
// behind it took 100 µs instead of 55.
const growthPays = 1.5

// tuneRetry is how long a stream whose growth did not pay waits before it may grow again.
const tuneRetry = time.Second

// autoTuneLocked doubles the receive window, up to MaxStreamWindow and as the session budget
// allows, when the reader's rate over the last epoch times the minimum RTT (the
// bandwidth-delay product) exceeds half the window: the sender may be held back by the window,
// not by the reader. That is quic-go's test (an epoch that consumed fraction f of the window
// within k·f·RTT), with k = 2 as gRPC's BDP estimator uses, judged over at least minTuneEpoch.
// The first epoch is the stream's start-up, when the peer's first window arrives at once and
// what follows a round trip later: its rate is not the stream's and is ignored (measured
// against it, a real link's first growth looked a third faster, not twice). The second sets a
// baseline. A growth is a probe: it stays only if the first epoch that starts a round trip
// after it (the credit must reach the writer, and what that lets it send come back) is read at
// least growthPays times as fast as the faster of the two epochs before the growth (one slow
// epoch does not make a growth look as if it paid); otherwise the window goes back (the peer's
// credit is not taken back, only not renewed beyond the smaller window) and the stream does
// not grow again for tuneRetry. Judged on the epoch right after it, a growth could not pay
// when the window had been used up exactly each round trip (whole frames filling it, as 64 or
// 32 KiB Writes do): that epoch still carried only what the old window allowed. A stalled
// reader sends no updates and so never grows its window; go-yamux's fixed 4·RTT threshold
// (libp2p/go-yamux#136) is avoided by scaling with f. s.mu must be held.
func (s *Session) autoTuneLocked(st *Stream, now time.Time) {
	elapsed := now.Sub(st.epochStart)
	if elapsed < minTuneEpoch {
		return // keep accumulating
	}
	consumed := st.readTotal - st.epochRead
	// Nothing was read before the start-up epoch, and at least half a window in each epoch.
	started, startUp := st.epochStart, st.epochRead == 0
	st.epochStart, st.epochRead = now, st.readTotal
	rate := float64(consumed) / float64(elapsed)
	prev := st.prevRate
	if !startUp { // the start-up epoch is not a baseline, see above
		st.prevRate = rate
	}
	if grown := st.tuneGrown; grown > 0 {
		if started.Before(st.tuneFrom) {
			return // the writer could not have used the growth yet: judge the next epoch
		}
		st.tuneGrown = 0
		if rate < growthPays*st.tuneRate {
			st.window -= grown // the memory is released once its credit is used (creditLocked)
			st.tuneAfter = now.Add(tuneRetry)
		}
		return
	}
	if now.Before(st.tuneAfter) {
		return
	}
	s.probeForTuningLocked()
	if prev == 0 {
		return // the first epoch: a baseline
	}
	rtt := s.minRTT
	if rtt <= 0 || st.window >= s.cfg.MaxStreamWindow {
		return
	}
	// rate·rtt > window/2  <=>  elapsed·window < 2·rtt·consumed
	if float64(elapsed)*float64(st.window) >= 2*float64(rtt)*float64(consumed) {
		return
	}
	grow := min(int64(st.window), int64(s.cfg.MaxStreamWindow)-int64(st.window))
	if !s.mem.reserve(grow) {
		return
	}
	st.reserved += grow
	st.window += uint32(grow)
	st.tuneGrown, st.tuneRate = uint32(grow), max(rate, prev)
	st.tuneFrom = now.Add(rtt)
	s.stats.windowGrowths.Add(1)
}

package mux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	lp "github.com/libp2p/go-yamux/v5"
)

// The tests in this file protect the limits that keep a flood from costing unbounded memory or
// goroutines: ping floods, SYN floods past AcceptBacklog and MaxIncomingStreams (refused with
// RST against every peer, also to a raw peer that does not read the refusals), SYNs past every
// peer's own backlog (its RST reaches our stream), tiny-frame floods, stream churn, a backlog
// of our streams that the peer never ACKs, and other sessions left unaffected while one is
// flooded.

// goroutineCeiling samples runtime.NumGoroutine while f runs and returns the maximum. Callers
// allow 32 over the start: timers of earlier tests may still fire, but a per-frame or
// per-stream goroutine would show as thousands.
func goroutineCeiling(f func()) int {
	var peak atomic.Int64
	peak.Store(int64(runtime.NumGoroutine()))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { // also when f fails the test
		close(stop)
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if n := int64(runtime.NumGoroutine()); n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	}()
	f()
	return int(peak.Load())
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// smallBuffers shrinks both socket buffers so a peer that does not read pushes back quickly.
func smallBuffers(peer, sess *net.TCPConn) {
	peer.SetReadBuffer(4 << 10)
	sess.SetWriteBuffer(4 << 10)
}

// TestHostilePingFlood: 100k pings from a peer that does not read. The receive loop keeps
// reading (the peer's writes complete), replies beyond the pong backlog are dropped and
// counted, goroutines and heap stay bounded, and once the peer reads again the session works.
func TestHostilePingFlood(t *testing.T) {
	s, p := hostileServer(t, nil)
	const n = 100_000
	flood := make([]byte, 0, n*12)
	for i := range n {
		flood = append(flood, rawHeader(0, uint8(typePing), flagSYN, 0, uint32(i))...)
	}
	base := runtime.NumGoroutine()
	heap0 := heapInUse()
	peak := goroutineCeiling(func() {
		for off := 0; off < len(flood); off += 64 << 10 {
			p.send(flood[off:min(off+64<<10, len(flood))])
		}
		// Every ping has been parsed once the frame counter covers them.
		waitFor(t, func() bool { return s.Stats().FramesReceived >= n })
	})
	if peak > base+32 {
		t.Errorf("goroutines rose from %d to %d during the flood", base, peak)
	}
	if grown := int64(heapInUse()) - int64(heap0); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes during the flood", grown)
	}
	st := s.Stats()
	if st.PongsDropped == 0 {
		t.Errorf("PongsDropped = 0 after %d pings from a peer that does not read", n)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended by a ping flood: %v", err)
	}
	p.autoPong = true
	p.start()
	waitFor(t, func() bool { return p.pongs.Load()+int64(st.PongsDropped) >= n })
	if got := p.pongs.Load() + int64(s.Stats().PongsDropped); got != n {
		t.Errorf("pongs received %d + dropped %d = %d, want %d", p.pongs.Load(), s.Stats().PongsDropped, got, n)
	}
	checkLegitStream(t, s, p, 1)
	if _, err := s.Ping(testCtx(t, 5*time.Second)); err != nil {
		t.Fatalf("Ping after the flood: %v", err)
	}
}

// TestHostileSYNFlood: thousands of SYNs past AcceptBacklog and MaxIncomingStreams, with no
// Accept on the session and a peer that reads. Every extra SYN is refused with RST, no
// goroutine or heap grows, the backlog holds exactly the limit, and the session accepts legit
// streams after. "paced" writes the SYNs in bursts of 512 and reads the refusals in between;
// "burst" writes all of them back to back (60 KB of SYNs in one go) while reading.
func TestHostileSYNFlood(t *testing.T) {
	for _, tc := range []struct {
		name            string
		backlog, maxInc int
		burst           int // SYNs per write; the peer waits for their RSTs after each write
	}{
		{"paced-backlog", 16, 1024, 512},
		{"paced-max-incoming", 64, 16, 512},
		{"burst", 16, 1024, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hostileConfig()
			cfg.AcceptBacklog = tc.backlog
			cfg.MaxIncomingStreams = tc.maxInc
			s, p := hostileServer(t, cfg)
			p.start()
			limit := min(tc.backlog, tc.maxInc)
			const n = 5000
			base := runtime.NumGoroutine()
			heap0 := heapInUse()
			peak := goroutineCeiling(func() {
				var buf []byte
				for i := range n {
					// half with a data payload, half bare WindowUpdate SYNs
					if i%2 == 0 {
						buf = append(buf, rawHeader(0, uint8(typeData), flagSYN, uint32(2*i+1), 4)...)
						buf = append(buf, "junk"...)
					} else {
						buf = append(buf, rawHeader(0, uint8(typeWindowUpdate), flagSYN, uint32(2*i+1), 0)...)
					}
					if tc.burst > 0 && (i+1)%tc.burst == 0 {
						p.send(buf)
						buf = buf[:0]
						want := int64(max(0, i+1-limit))
						waitFor(t, func() bool { return p.rsts.Load() >= want })
					}
				}
				p.send(buf)
				waitFor(t, func() bool { return p.rsts.Load() >= n-int64(limit) || s.Err() != nil })
			})
			if err := s.Err(); err != nil {
				t.Fatalf("SYN flood ended the session: %v", err)
			}
			if peak > base+32 {
				t.Errorf("goroutines rose from %d to %d during the flood", base, peak)
			}
			if grown := int64(heapInUse()) - int64(heap0); grown > 8<<20 {
				t.Errorf("heap grew by %d bytes during the flood", grown)
			}
			if got := p.rsts.Load(); got != n-int64(limit) {
				t.Errorf("got %d RSTs, want %d", got, n-limit)
			}
			if got := s.Stats().StreamsRefused; got != uint64(n-limit) {
				t.Errorf("StreamsRefused = %d, want %d", got, n-limit)
			}
			if got := s.NumStreams(); got != limit {
				t.Errorf("NumStreams = %d, want %d", got, limit)
			}
			// The first `limit` streams were kept: accept them.
			for i := range limit {
				st := acceptOne(t, s)
				if st.ID() != uint32(2*i+1) {
					t.Fatalf("accepted stream %d, want %d", st.ID(), 2*i+1)
				}
				st.Reset()
			}
			waitFor(t, func() bool { return s.NumStreams() == 0 })
			p.drainFrames(50 * time.Millisecond)
			checkLegitStream(t, s, p, 2*n+1)
		})
	}
}

// TestHostileSYNFloodNoRead: a SYN flood from a peer that never reads the refusals. The
// receive loop slows the peer down while refusals queue up, and the session ends within about
// WriteTimeout with a defined error (*ProtocolError: refusals not read, or ErrWriteTimeout);
// goroutines stay bounded throughout.
func TestHostileSYNFloodNoRead(t *testing.T) {
	cfg := hostileConfig()
	cfg.AcceptBacklog = 4
	cfg.WriteTimeout = 500 * time.Millisecond
	s, p := hostileSession(t, cfg, false, smallBuffers)
	base := runtime.NumGoroutine()
	peak := goroutineCeiling(func() {
		var buf []byte
		for i := range 20000 {
			buf = append(buf, rawHeader(0, uint8(typeWindowUpdate), flagSYN, uint32(2*i+1), 0)...)
			if len(buf) >= 32<<10 {
				if p.trySend(buf) != nil {
					return // the session gave up on us
				}
				buf = buf[:0]
			}
		}
		p.trySend(buf)
	})
	if peak > base+32 {
		t.Errorf("goroutines rose from %d to %d during the flood", base, peak)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still up 5 s after a flood whose refusals are never read")
	}
	var pe *ProtocolError
	if err := s.Err(); !errors.As(err, &pe) && !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("session ended with %v, want a *ProtocolError or ErrWriteTimeout", err)
	}
}

// TestHostileOthersUnaffected: while one session is flooded and then broken by a protocol
// violation, two other sessions in the same process keep moving checksummed data.
func TestHostileOthersUnaffected(t *testing.T) {
	type pair struct{ c, s *Session }
	var pairs []pair
	for range 2 {
		c, s := sessionPair(t, nil, nil)
		pairs = append(pairs, pair{c, s})
	}
	ctx := testCtx(t, 20*time.Second)
	stop := make(chan struct{})
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	rounds := make([]atomic.Int64, len(pairs))
	for i, pr := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- echoRounds(ctx, pr.c, pr.s, uint64(i), stop, &rounds[i])
		}()
	}

	victim, p := hostileSession(t, nil, false, smallBuffers)
	var flood []byte
	for i := range 5000 {
		flood = append(flood, rawHeader(0, uint8(typePing), flagSYN, 0, uint32(i))...)
		flood = append(flood, rawHeader(0, uint8(typeWindowUpdate), flagSYN, uint32(2*i+1), 0)...)
	}
	p.start()
	p.send(flood)
	p.frame(typeWindowUpdate, flagSYN, 1, nil) // duplicate: fatal
	select {
	case <-victim.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("victim session survived a duplicate SYN")
	}
	for i := range rounds { // each pair completes three more rounds after the victim's end
		after := rounds[i].Load() + 3
		waitFor(t, func() bool { return rounds[i].Load() >= after })
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	for i, pr := range pairs {
		if pr.c.Err() != nil || pr.s.Err() != nil {
			t.Errorf("pair %d ended: %v / %v", i, pr.c.Err(), pr.s.Err())
		}
	}
}

// echoRounds opens streams on c, has s echo them, and checks each echo until stop closes;
// it returns the first mismatch or error. It counts completed rounds in done, and goes on
// past stop until at least three have completed.
func echoRounds(ctx context.Context, c, s *Session, seed uint64, stop chan struct{}, done *atomic.Int64) error {
	go serveEcho(ctx, s)
	rounds := 0
	for i := uint64(0); ; i++ {
		select {
		case <-stop:
			if rounds >= 3 { // at least a few rounds, however slow the machine
				return nil
			}
		default:
		}
		data := randomBytes(int(32<<10+i%1000), seed<<32|i)
		st, err := c.Open(ctx)
		if err != nil {
			return err
		}
		go func() {
			st.Write(data)
			st.CloseWrite()
		}()
		got, err := io.ReadAll(st)
		st.Close()
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			return errors.New("echo mismatch")
		}
		rounds++
		done.Add(1)
	}
}

// TestHostileUnACKedBacklog: when AcceptBacklog of our opened streams wait for an ACK that
// never comes, Open waits (bounded by its ctx) instead of sending more SYNs the peer would
// refuse; when the open timeouts reset them, Open proceeds again.
func TestHostileUnACKedBacklog(t *testing.T) {
	cfg := hostileConfig()
	cfg.AcceptBacklog = 4
	cfg.StreamOpenTimeout = 400 * time.Millisecond
	s, p := hostileServer(t, cfg)
	p.start()
	for range 4 {
		if _, err := s.Open(testCtx(t, time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Open(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open past the un-ACKed backlog: %v, want to wait until ctx ends", err)
	}
	start := time.Now()
	st, err := s.Open(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Open after the open timeouts: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open waited %v", d)
	}
	reset := map[uint32]bool{}
	for len(reset) < 4 { // the timers fire in any order
		f := p.expect(5*time.Second, "RSTs for the timed-out opens", func(f rawFrame) bool { return f.flags&flagRST != 0 })
		if f.id > 8 || f.id%2 != 0 {
			t.Fatalf("RST for stream %d", f.id)
		}
		reset[f.id] = true
	}
	p.frame(typeData, flagACK, st.ID(), []byte("ack with data"))
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 13)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ack with data" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
}

// TestHostileTinyFrames: 100k one-byte Data frames on one stream that nobody reads (within
// the 256 KiB window). Buffering must cost about the bytes, not a buffer per frame: heap growth
// stays far below 100k × any chunk size, and every byte reads back in order.
func TestHostileTinyFrames(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	const n = 100_000
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	heap0 := heapInUse()
	buf := make([]byte, 0, n*13)
	for i := range n {
		buf = append(buf, rawHeader(0, uint8(typeData), 0, 1, 1)...)
		buf = append(buf, byte(i))
	}
	p.send(buf)
	waitFor(t, func() bool { return s.Stats().BytesReceived >= n })
	if grown := int64(heapInUse()) - int64(heap0); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes buffering %d one-byte frames", grown, n)
	}
	got := make([]byte, n)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(st, got); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if got[i] != byte(i) {
			t.Fatalf("byte %d = %d, want %d", i, got[i], byte(i))
		}
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// TestHostileStreamChurn: 20k streams opened and torn down at once by the peer (SYN with data
// then RST, or SYN|FIN with data then our Close), with the application accepting them all.
// The stream table, the memory reservation and the goroutine count all return to where they
// started; nothing is retained per dead stream.
func TestHostileStreamChurn(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	ctx := testCtx(t, 30*time.Second)
	const n = 20000
	var accepted atomic.Int64
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for accepted.Load() < n {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				t.Errorf("AcceptStream after %d: %v (stats %+v)", accepted.Load(), err, s.Stats())
				return
			}
			st.Close()
			accepted.Add(1)
		}
	}()
	base := runtime.NumGoroutine()
	heap0 := heapInUse()
	peak := goroutineCeiling(func() {
		var buf []byte
		for i := range n {
			id := uint32(2*i + 1)
			if i%2 == 0 {
				buf = append(buf, rawHeader(0, uint8(typeData), flagSYN, id, 3)...)
				buf = append(buf, "abc"...)
				buf = append(buf, rawHeader(0, uint8(typeWindowUpdate), flagRST, id, 0)...)
			} else {
				buf = append(buf, rawHeader(0, uint8(typeData), flagSYN|flagFIN, id, 3)...)
				buf = append(buf, "xyz"...)
			}
			if i%64 == 63 {
				p.send(buf)
				buf = buf[:0]
				// stay within the accept backlog (256) so nothing is refused
				waitFor(t, func() bool { return int64(i)-accepted.Load() <= 128 })
			}
		}
		p.send(buf)
		select {
		case <-acceptDone:
		case <-time.After(20 * time.Second):
			t.Fatalf("accepted %d of %d streams", accepted.Load(), n)
		}
	})
	waitFor(t, func() bool { return s.NumStreams() == 0 && s.Stats().MemoryReserved == 0 })
	if peak > base+32 {
		t.Errorf("goroutines rose from %d to %d", base, peak)
	}
	if grown := int64(heapInUse()) - int64(heap0); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes over %d dead streams", grown, n)
	}
	if st := s.Stats(); st.StreamsRefused != 0 || st.StreamsAccepted != n || s.Err() != nil {
		t.Fatalf("refused %d, accepted %d, err %v", st.StreamsRefused, st.StreamsAccepted, s.Err())
	}
	p.drainFrames(100 * time.Millisecond)
	checkLegitStream(t, s, p, 2*n+1)
}

// TestRefusalAcrossPeers: SYNs past our AcceptBacklog are refused with RST, against every
// peer: their streams fail with their reset error while the ones we keep are accepted in
// order and carry data, and both sessions go on.
func TestRefusalAcrossPeers(t *testing.T) {
	ocfg := interopConfig()
	ocfg.AcceptBacklog = 4
	forEachPeer(t, allPeers, peerOpts{ours: ocfg}, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 10*time.Second)
		var psts []net.Conn
		for range 10 {
			pst, err := p.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			psts = append(psts, pst)
		}
		waitFor(t, func() bool { return ours.Stats().StreamsRefused == 6 })
		for i, pst := range psts {
			pst.SetDeadline(time.Now().Add(3 * time.Second))
			_, err := pst.Write([]byte("hello"))
			if i < 4 {
				if err != nil {
					t.Fatalf("kept stream %d: Write: %v", i, err)
				}
				continue
			}
			// The RST may land after a first Write that fitted the initial window.
			if err == nil {
				waitFor(t, func() bool {
					_, err = pst.Write([]byte("hello"))
					return err != nil
				})
			}
			if !isPeerReset(err) {
				t.Fatalf("refused stream %d: Write: %v, want their reset error", i, err)
			}
		}
		for i := range 4 {
			ost, err := ours.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ost.ID() != streamID(psts[i]) {
				t.Fatalf("accepted stream %d, want %d", ost.ID(), streamID(psts[i]))
			}
			ost.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 5)
			if _, err := io.ReadFull(ost, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("kept stream read %q, %v", buf, err)
			}
			ost.Reset()
			psts[i].Close()
		}
		waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
		if ours.Err() != nil || peerEnded(p) {
			t.Fatalf("a session ended: ours %v, theirs ended %v", ours.Err(), peerEnded(p))
		}
	})
}

// TestPeerRefusalAcrossPeers: every peer refuses SYNs past its AcceptBacklog (4 here) with
// RST. Our Open does not wait for ACKs (0-RTT), so the refusal shows up on the stream: Read
// fails with a remote *StreamError, the refused streams are freed, and the streams the peer
// keeps carry data.
func TestPeerRefusalAcrossPeers(t *testing.T) {
	mcfg := interopConfig()
	mcfg.AcceptBacklog = 4
	o := peerOpts{
		mux:     mcfg,
		yamux:   func(c *yamux.Config) { c.AcceptBacklog = 4 },
		goyamux: func(c *lp.Config) { c.AcceptBacklog = 4 },
	}
	forEachPeer(t, allPeers, o, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 10*time.Second)
		var sts []*Stream
		for i := range 10 {
			st, err := ours.Open(ctx)
			if err != nil {
				t.Fatalf("Open %d: %v", i, err)
			}
			// A refused stream's RST may already be back: then its Write fails.
			if _, err := st.Write([]byte("hello")); err != nil && (i < 4 || !errors.Is(err, ErrStreamReset)) {
				t.Fatalf("0-RTT Write %d: %v", i, err)
			}
			sts = append(sts, st)
		}
		for i, st := range sts[4:] {
			st.SetReadDeadline(time.Now().Add(5 * time.Second))
			var se *StreamError
			if _, err := st.Read(make([]byte, 1)); !errors.As(err, &se) || !se.Remote {
				t.Fatalf("refused stream %d: Read %v, want a remote *StreamError", i+4, err)
			}
			// (That a Write after this Read fails too is TestHostileResetIsAtomic's job.)
		}
		for i := range 4 {
			pst := acceptPeer(t, p)
			if streamID(pst) != sts[i].ID() {
				t.Fatalf("the peer accepted %d, want %d", streamID(pst), sts[i].ID())
			}
			go func() {
				io.Copy(pst, pst)
				peerHalfClose(pst)
				pst.Close()
			}()
			sts[i].CloseWrite()
			sts[i].SetReadDeadline(time.Now().Add(5 * time.Second))
			if got, err := io.ReadAll(sts[i]); err != nil || string(got) != "hello" {
				t.Fatalf("kept stream %d echoed %q, %v", i, got, err)
			}
			sts[i].Close()
		}
		waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
		if ours.Err() != nil || peerEnded(p) {
			t.Fatalf("a session ended: ours %v, theirs ended %v", ours.Err(), peerEnded(p))
		}
	})
}

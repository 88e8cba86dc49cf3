package mux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	lp "github.com/libp2p/go-yamux/v5"
)

// The tests in this file protect flow control: a sender never sends more than the peer's
// window, a receiver grants back what was read (one WindowUpdate per half window) and resets
// only the stream whose peer overruns or overflows a window, a blocked sender waits for credit
// and honours its deadline, and bulk transfers that use up and refill the windows many times
// (against a mux peer and hashicorp/yamux with its windows raised) deliver every byte.

// TestHostileWindowOverflow: WindowUpdate deltas that push the send window past 2^32-1 reset
// that stream (RST on the wire, ErrStreamReset locally); the session and other streams go on.
func TestHostileWindowOverflow(t *testing.T) {
	for _, deltas := range [][]uint32{
		{0xFFFFFFFF},
		{0x80000000, 0x80000000},
		{0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF},
	} {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeWindowUpdate, flagSYN, 1, nil)
		p.frame(typeWindowUpdate, flagSYN, 3, nil) // a bystander stream
		st1 := acceptOne(t, s)
		st3 := acceptOne(t, s)
		for _, d := range deltas {
			p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, d))
		}
		f := p.expect(5*time.Second, "RST for stream 1", isRST(1))
		if f.typ != typeWindowUpdate {
			t.Errorf("RST came on a %v frame", f.typ)
		}
		st1.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := st1.Write([]byte("x")); !errors.Is(err, ErrStreamReset) {
			t.Errorf("deltas %#x: Write on the overflowed stream = %v, want ErrStreamReset", deltas, err)
		}
		if _, err := st1.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
			t.Errorf("deltas %#x: Read on the overflowed stream = %v, want ErrStreamReset", deltas, err)
		}
		// stream 3 still works both ways
		p.frame(typeData, 0, 3, []byte("ping3"))
		buf := make([]byte, 5)
		st3.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(st3, buf); err != nil || string(buf) != "ping3" {
			t.Fatalf("bystander read %q, %v", buf, err)
		}
		if _, err := st3.Write([]byte("pong3")); err != nil {
			t.Fatal(err)
		}
		p.expect(5*time.Second, "bystander data", func(f rawFrame) bool { return f.typ == typeData && f.id == 3 })
		if err := s.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	}
}

// TestHostileDataBeyondWindow: a Data frame larger than the granted window resets only that
// stream; its payload is skipped so the next frame parses correctly.
func TestHostileDataBeyondWindow(t *testing.T) {
	t.Run("one-frame", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeData, flagSYN, 1, make([]byte, initialWindow+1))
		p.expect(5*time.Second, "RST for stream 1", isRST(1))
		// The stream reached the backlog before its data overflowed: it reads as reset.
		st := acceptOne(t, s)
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		if st.ID() != 1 {
			t.Fatalf("accepted stream %d, want 1", st.ID())
		}
		if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
			t.Fatalf("Read on the overflowed stream: %v, want ErrStreamReset", err)
		}
		// The 256 KiB+1 payload was skipped exactly: this frame right behind it works.
		checkLegitStream(t, s, p, 3)
	})
	t.Run("cumulative", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeData, flagSYN, 1, make([]byte, initialWindow-10))
		st := acceptOne(t, s)
		// Nothing read yet, so no window was given back: 11 more bytes overflow it.
		p.frame(typeData, 0, 1, make([]byte, 11))
		p.expect(5*time.Second, "RST for stream 1", isRST(1))
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, st); !errors.Is(err, ErrStreamReset) {
			t.Fatalf("reading the overflowed stream: %v, want ErrStreamReset", err)
		}
		var se *StreamError
		if _, err := st.Read(make([]byte, 1)); !errors.As(err, &se) || se.Remote {
			t.Fatalf("stream error %v, want a local *StreamError", err)
		}
		checkLegitStream(t, s, p, 3)
	})
}

// TestHostileNeverReads: a peer that grants a huge window and then stops reading. Our Write
// blocks until WriteTimeout ends the session with an error that is a net.Error with
// Timeout() true, and the blocked Write returns it.
func TestHostileNeverReads(t *testing.T) {
	cfg := hostileConfig()
	cfg.WriteTimeout = 500 * time.Millisecond
	s, p := hostileSession(t, cfg, false, smallBuffers)
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	p.frame(typeWindowUpdate, 0, 1, []byte{}) // no-op
	p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, 64<<20))
	waitFor(t, func() bool { return s.Stats().FramesReceived >= 3 })
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(make([]byte, 32<<20))
		werr <- err
	}()
	var err error
	select {
	case err = <-werr:
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked 5 s after the peer stopped reading")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Write returned after %v with WriteTimeout %v", d, cfg.WriteTimeout)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Write error %v, want a net.Error with Timeout()", err)
	}
	<-s.Done()
	serr := s.Err()
	if !errors.Is(serr, ErrWriteTimeout) || !errors.As(serr, &ne) || !ne.Timeout() {
		t.Fatalf("session error %v, want ErrWriteTimeout as a timeout net.Error", serr)
	}
}

// TestHostileZeroWindowDeadline: the peer never grants window beyond the initial 256 KiB. A
// Write of more blocks, its write deadline ends it with a timeout net.Error matching
// os.ErrDeadlineExceeded and the count written so far; the stream and session stay usable.
func TestHostileZeroWindowDeadline(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	st.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := st.Write(make([]byte, initialWindow+1000))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past the window: %v, want a timeout", err)
	}
	if n != initialWindow {
		t.Fatalf("Write reported %d bytes written, want the window %d", n, initialWindow)
	}
	// Window arrives: the stream goes on after the deadline is cleared.
	st.SetWriteDeadline(time.Time{})
	p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, 1000))
	if _, err := st.Write(make([]byte, 1000)); err != nil {
		t.Fatalf("Write after window update: %v", err)
	}
	total := 0
	for total < initialWindow+1000 {
		f := p.expect(5*time.Second, "data", func(f rawFrame) bool { return f.typ == typeData && f.id == 1 })
		total += len(f.payload)
	}
	if total != initialWindow+1000 || s.Err() != nil {
		t.Fatalf("peer got %d bytes, session err %v", total, s.Err())
	}
}

// TestHostileExactWindowUse: a peer that sends exactly as much as it has been granted, never
// a byte more or less, on four streams at once (8 MiB each, its Data frames as large as its
// credit allows up to 256 KiB), with a small session budget and pongs delayed by 10 ms so that
// auto-tuning wants to grow every window to 1 MiB (4 MiB in all, twice the budget). Our window
// accounting must match the wire exactly: no stream is reset for flow control, every byte
// arrives in order, some window grows, and the reserved memory never exceeds MaxSessionMemory.
func TestHostileExactWindowUse(t *testing.T) {
	cfg := hostileConfig()
	cfg.MaxSessionMemory = 2 << 20
	cfg.MaxStreamWindow = 1 << 20
	s, p := hostileServer(t, cfg)
	p.autoPong = true
	p.pongDelay = 10 * time.Millisecond // a round trip that makes auto-tuning grow windows
	p.start()
	const streams, size = 4, 8 << 20
	ids := []uint32{1, 3, 5, 7}
	var mu sync.Mutex
	credit := map[uint32]int{}
	more := make(chan struct{}, 1)
	for _, id := range ids {
		credit[id] = initialWindow
		p.frame(typeWindowUpdate, flagSYN, id, nil)
	}
	pumpDone := make(chan error, 1)
	stopPump := make(chan struct{})
	defer close(stopPump)
	go func() { // credits from our WindowUpdates; any RST is a failure
		for {
			var f rawFrame
			select {
			case f = <-p.frames:
			case <-stopPump:
				return
			}
			if f.flags&flagRST != 0 {
				pumpDone <- fmt.Errorf("RST for stream %d", f.id)
				return
			}
			if f.typ == typeWindowUpdate && f.length > 0 {
				mu.Lock()
				credit[f.id] += int(f.length)
				mu.Unlock()
				select { // wake a writer waiting for credit, if none is already woken
				case more <- struct{}{}:
				default:
				}
			}
		}
	}()
	results := make(chan error, streams)
	for range streams {
		st := acceptOne(t, s)
		go func() {
			st.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, sum, err := sumReader(st)
			if err == nil && (n != size || sum != sha256Of(randomBytes(size, uint64(st.ID())))) {
				err = fmt.Errorf("stream %d: %d bytes, checksum mismatch", st.ID(), n)
			}
			results <- err
		}()
	}
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
				if r := s.Stats().MemoryReserved; r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	data := map[uint32][]byte{}
	for _, id := range ids {
		data[id] = randomBytes(size, uint64(id))
	}
	deadline := time.Now().Add(30 * time.Second)
	for sent := 0; sent < streams*size; {
		progress := false
		for _, id := range ids {
			mu.Lock()
			n := min(credit[id], 256<<10, len(data[id]))
			credit[id] -= n
			mu.Unlock()
			if n == 0 {
				continue
			}
			p.frame(typeData, 0, id, data[id][:n])
			data[id] = data[id][n:]
			if len(data[id]) == 0 {
				p.frame(typeWindowUpdate, flagFIN, id, nil)
			}
			sent += n
			progress = true
		}
		if !progress {
			select {
			case <-more:
			case err := <-pumpDone:
				t.Fatal(err)
			case <-time.After(time.Until(deadline)):
				t.Fatalf("no window after %d of %d bytes", sent, streams*size)
			}
		}
	}
	for range streams {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	close(stopSampling)
	<-sampled
	if peak.Load() > int64(cfg.MaxSessionMemory) {
		t.Errorf("reserved memory peaked at %d, over the budget %d", peak.Load(), cfg.MaxSessionMemory)
	}
	select {
	case err := <-pumpDone:
		t.Fatal(err)
	default:
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	if s.Stats().WindowGrowths == 0 {
		t.Errorf("no window grew: the budget was not put to the test (peak %d)", peak.Load())
	}
}

// TestHostileSendRespectsWindow: a peer that hands out credit in odd little pieces (1, 7, 1000,
// 4093 ... bytes) only when the previous credit is used up. Our sender must never send a byte
// beyond the credit (checked at every frame), must use one-byte credit too, and must deliver
// the whole Write intact.
func TestHostileSendRespectsWindow(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	const size = initialWindow + 200<<10
	want := randomBytes(size, 9)
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(want)
		if err == nil {
			err = st.CloseWrite()
		}
		werr <- err
	}()
	granted, got := initialWindow, 0
	var wire []byte
	pieces := []int{1, 7, 1000, 4093, 1, 65536, 12345}
	for i := 0; got < size; {
		f := p.expect(5*time.Second, "data", func(f rawFrame) bool { return f.id == 1 && f.typ == typeData })
		got += len(f.payload)
		wire = append(wire, f.payload...)
		if got > granted {
			t.Fatalf("received %d bytes with %d granted", got, granted)
		}
		if got == granted && got < size {
			d := pieces[i%len(pieces)]
			i++
			granted += d
			p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, uint32(d)))
		}
	}
	p.expect(5*time.Second, "FIN", func(f rawFrame) bool { return f.id == 1 && f.flags&flagFIN != 0 })
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wire, want) {
		t.Fatal("bytes on the wire differ from the bytes written")
	}
}

// TestBulkAcrossPeers: more than 16 MiB each way at once on one stream, checksummed, so each
// side's window is used up and refilled dozens of times, against every peer: on a stream we
// open, with the peer's window at its default against our auto-tuned one, and on a stream the
// peer opens with its window raised to 1 MiB (hashicorp/yamux's SYN then carries a 768 KiB
// window delta and its Data frames reach 1 MiB; mux and go-yamux may grow theirs up to it) against
// our window fixed at 256 KiB; and, against hashicorp/yamux, on a stream we open with its
// window raised to 1 MiB (its ACK carries the 768 KiB delta).
func TestBulkAcrossPeers(t *testing.T) {
	const size = 17 << 20
	cases := []struct {
		name        string
		kinds       []peerKind
		theirWindow uint32 // 0: the peer's default
		ourWindow   uint32
		theyOpen    bool
	}{
		{"we-open/theirs-default-ours16m", allPeers, 0, 0, false},
		{"they-open/theirs1m-ours256k", allPeers, 1 << 20, 256 << 10, true},
		{"we-open/theirs1m-ours16m", yamuxPeers, 1 << 20, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ocfg := interopConfig()
			ocfg.MaxStreamWindow = tc.ourWindow
			o := peerOpts{ours: ocfg}
			if tc.theirWindow != 0 {
				mcfg := interopConfig()
				mcfg.MaxStreamWindow = tc.theirWindow
				o.mux = mcfg
				o.yamux = func(c *yamux.Config) { c.MaxStreamWindowSize = tc.theirWindow }
				o.goyamux = func(c *lp.Config) { c.MaxStreamWindowSize = tc.theirWindow }
			}
			forEachPeer(t, tc.kinds, o, func(t *testing.T, ours *Session, p peer) {
				up := randomBytes(size, 1)
				down := randomBytes(size, 2)
				wantUp, wantDown := sha256Of(up), sha256Of(down)

				ost, pst := openEitherWay(t, ours, p, tc.theyOpen)
				// Their side: read everything we send while sending everything back.
				theirErr := make(chan error, 1)
				go func() {
					pst.SetDeadline(time.Now().Add(30 * time.Second))
					werr := make(chan error, 1)
					go func() {
						_, err := pst.Write(down)
						if err == nil {
							err = peerHalfClose(pst) // FIN
						}
						werr <- err
					}()
					n, sum, err := sumReader(pst)
					if err == nil && (n != size || sum != wantUp) {
						err = fmt.Errorf("they received %d bytes, checksum match %v", n, sum == wantUp)
					}
					if e := <-werr; err == nil && e != nil {
						err = fmt.Errorf("their write: %w", e)
					}
					theirErr <- err
				}()
				ost.SetDeadline(time.Now().Add(30 * time.Second))
				ourWrite := make(chan error, 1)
				go func() {
					_, err := ost.Write(up)
					if err == nil {
						err = ost.CloseWrite()
					}
					ourWrite <- err
				}()
				n, sum, err := sumReader(ost)
				if err != nil {
					t.Fatalf("our read: %v after %d bytes", err, n)
				}
				if n != size || sum != wantDown {
					t.Fatalf("we received %d bytes, checksum match %v", n, sum == wantDown)
				}
				if err := <-ourWrite; err != nil {
					t.Fatalf("our write: %v", err)
				}
				if err := <-theirErr; err != nil {
					t.Fatal(err)
				}
				ost.Close()
				pst.Close()
				waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
				st := ours.Stats()
				if st.BytesSent < size || st.BytesReceived < size {
					t.Errorf("stats: sent %d received %d, want both >= %d", st.BytesSent, st.BytesReceived, size)
				}
			})
		})
	}
}

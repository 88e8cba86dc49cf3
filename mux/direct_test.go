package mux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests in this file attack the read token (readtoken.go): direct reads by Stream.Read,
// parks, the receive loop's lease, and kicks (Reset, Close, SetReadDeadline, session end).

// holderIs reports whether st's Read holds the session's read token (a direct read).
func holderIs(s *Session, st *Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rt.holder == st
}

// spin busy-waits about n loop iterations.
func spin(n int) {
	var x atomic.Int64
	for i := 0; i < n; i++ {
		x.Add(1)
	}
}

// openedStream opens a stream from client and returns it with server's end, once one byte has
// gone through.
func openedStream(t *testing.T, ctx context.Context, client, server *Session) (*Stream, *Stream) {
	t.Helper()
	a, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte{0})
	sa := acceptOne(t, server)
	if _, err := io.ReadFull(sa, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return a, sa
}

// TestDirectSetReadDeadlineRace: a deadline set while a Read is about to take a parked
// token must still end that Read. Read checks its deadline before it takes the token, and
// SetReadDeadline kicks only a Read that already holds it, so the Read must look at the
// deadline again once it holds the token (readDirect); otherwise it reads the connection
// with no deadline until data arrives.
func TestDirectSetReadDeadlineRace(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	a, sa := openedStream(t, ctx, client, server)
	// Another stream whose SetReadDeadline contends the token's mutex without touching the
	// token: it widens the window between Read's deadline check and takeDirect.
	b, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	hammered := make(chan struct{})
	go func() {
		defer close(hammered)
		for !isClosed(stop) {
			b.SetReadDeadline(time.Now().Add(time.Hour))
			runtime.Gosched()
		}
	}()
	defer func() { close(stop); <-hammered }()

	one := make([]byte, 1)
	end := time.Now().Add(2500 * time.Millisecond)
	iters, direct := 0, 0
	for time.Now().Before(end) {
		iters++
		a.SetReadDeadline(time.Time{})
		if _, err := sa.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, one); err != nil {
			t.Fatalf("iteration %d: read: %v", iters, err)
		}
		// The token is now parked (a's read just ended); the next Read takes it.
		var started atomic.Bool
		res := make(chan error, 1)
		go func() {
			started.Store(true)
			_, err := a.Read(make([]byte, 8))
			res <- err
		}()
		for !started.Load() {
			runtime.Gosched()
		}
		spin(iters % 64 * 8)
		if holderIs(client, a) {
			direct++
		}
		if iters%2 == 0 {
			a.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		} else {
			a.SetReadDeadline(time.Now())
		}
		expectTimeout(t, fmt.Sprintf("iteration %d", iters), res, client, a, sa)
	}
	t.Logf("%d iterations, %d with the Read holding the token when the deadline was set", iters, direct)
}

// parked reports whether s's read token is parked: neither the receive loop nor a Read holds it.
func parked(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.rt.loop && s.rt.holder == nil
}

// TestDirectSetReadDeadlineWhileTakingToken forces the interleaving that
// TestDirectSetReadDeadlineRace can only make likely: a Read with no deadline has checked its
// deadline and is about to take the parked token when SetReadDeadline runs, finds no holder to
// kick, and returns; the Read then takes the token. It must still see the deadline (readDirect
// looks again) instead of reading the connection with none. The beforeTakeDirect hook runs
// SetReadDeadline at that point, and holdParked keeps the token parked until the Read takes it.
func TestDirectSetReadDeadlineWhileTakingToken(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	a, sa := openedStream(t, ctx, client, server)
	defer client.hooks.holdParked.Store(false)
	for attempt := range 10 {
		a.SetReadDeadline(time.Time{})
		parkToken(t, client, a, func(b []byte) { sa.Write(b) })
		var wasParked atomic.Bool
		hook := func(st *Stream) {
			if st == a {
				wasParked.Store(parked(client))
				a.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
			}
		}
		client.hooks.beforeTakeDirect.Store(&hook)
		res := make(chan error, 1)
		go func() {
			_, err := a.Read(make([]byte, 8))
			res <- err
		}()
		// Blocked past the deadline means the direct read never looked at the deadline.
		expectTimeout(t, fmt.Sprintf("attempt %d", attempt), res, client, a, sa)
		client.hooks.beforeTakeDirect.Store(nil)
		if !wasParked.Load() {
			t.Fatalf("attempt %d: the token was not parked when the Read went to take it", attempt)
		}
	}
}

// expectTimeout waits for the result of a's Read, whose deadline was just set: ErrTimeout
// within a second, or the test fails (a byte from sa releases the stuck Read first).
func expectTimeout(t *testing.T, what string, res chan error, s *Session, a, sa *Stream) {
	t.Helper()
	select {
	case err := <-res:
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("%s: Read after its deadline: %v, want ErrTimeout", what, err)
		}
	case <-time.After(time.Second):
		held := holderIs(s, a)
		sa.Write([]byte{2})
		<-res
		t.Fatalf("%s: Read still blocked 1s after its deadline (holding the read token: %v)", what, held)
	}
}

// rawPeerForDirect starts a server session whose client end is a raw peer that answers
// pings (an unanswered ping counts as a wait on the peer and keeps the token from parking).
func rawPeerForDirect(t *testing.T) (*Session, *rawPeer) {
	t.Helper()
	s, p := hostileServer(t, nil)
	p.autoPong = true
	p.start()
	// The peer's reader writes the pongs: once the session's startup probes are answered it
	// writes nothing more, and the test's partial frames cannot interleave with a pong.
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.pings.out) == 0 && s.rtt > 0
	})
	return s, p
}

// openRaw has the raw peer open stream id with one byte of data and returns the accepted
// stream after reading that byte.
func openRaw(t *testing.T, s *Session, p *rawPeer, id uint32) *Stream {
	t.Helper()
	p.frame(typeData, flagSYN, id, []byte{byte(id)})
	st := acceptOne(t, s)
	if st.ID() != id {
		t.Fatalf("accepted %d, want %d", st.ID(), id)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(st, b); err != nil || b[0] != byte(id) {
		t.Fatalf("first byte of %d: %v %v", id, b, err)
	}
	return st
}

type readRes struct {
	b   []byte
	err error
	at  time.Time
}

// goRead runs one Read of st with a buffer of n bytes.
func goRead(st *Stream, n int) chan readRes {
	c := make(chan readRes, 1)
	go func() {
		b := make([]byte, n)
		k, err := st.Read(b)
		c <- readRes{b[:k], err, time.Now()}
	}()
	return c
}

// parkToken leaves s's read token parked, and sets the holdParked hook so that it stays
// parked until a Read takes it or someone waits on the peer (the caller clears the hook): the
// receive loop reads the byte that send delivers to st, then parks the token. The byte is
// read back from st's buffer, which does not take the token.
func parkToken(t *testing.T, s *Session, st *Stream, send func([]byte)) {
	t.Helper()
	s.hooks.holdParked.Store(true)
	send([]byte{0xAB})
	waitFor(t, func() bool { return parked(s) })
	b := make([]byte, 1)
	if _, err := io.ReadFull(st, b); err != nil || b[0] != 0xAB {
		t.Fatalf("priming byte: %v %v", b, err)
	}
	waitFor(t, func() bool { return parked(s) })
}

// primeDirect gets st's reader into a direct read: with the token parked (parkToken), a Read
// of up to 1000 bytes takes it. It returns that Read, holding the token, with holdParked
// cleared.
func primeDirect(t *testing.T, s *Session, p *rawPeer, st *Stream) chan readRes {
	t.Helper()
	parkToken(t, s, st, func(b []byte) { p.frame(typeData, 0, st.ID(), b) })
	rc := goRead(st, 1000)
	waitFor(t, func() bool { return holderIs(s, st) })
	s.hooks.holdParked.Store(false)
	return rc
}

// kickLatency is how soon a kicked Read must return.
const kickLatency = 300 * time.Millisecond

// TestDirectKickMidFrame: a Read blocked in a direct read (forced with primeDirect and the
// holdParked hook) in the middle of a frame (header and half the payload sent, or half a
// header) is ended promptly by Reset, Close,
// SetReadDeadline and Session.Close from another goroutine, with the right error; the rest of
// the frame is then read in place, so a later Read (deadline cleared) gets every byte and
// other streams' bytes stay intact.
func TestDirectKickMidFrame(t *testing.T) {
	kicks := []struct {
		name string
		kick func(s *Session, st *Stream)
		want error
	}{
		{"Reset", func(s *Session, st *Stream) { st.Reset() }, ErrStreamReset},
		{"Close", func(s *Session, st *Stream) { st.Close() }, ErrStreamClosed},
		{"SetReadDeadline", func(s *Session, st *Stream) { st.SetReadDeadline(time.Now()) }, ErrTimeout},
		{"SetReadDeadlineFuture", func(s *Session, st *Stream) { st.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) }, ErrTimeout},
		{"SessionClose", func(s *Session, st *Stream) { go s.Close() }, ErrSessionClosed},
	}
	for _, k := range kicks {
		for _, midHeader := range []bool{false, true} {
			name := k.name + "/midPayload"
			if midHeader {
				name = k.name + "/midHeader"
			}
			t.Run(name, func(t *testing.T) {
				s, p := rawPeerForDirect(t)
				other := openRaw(t, s, p, 1)
				id := uint32(3)
				rounds := 8
				if k.name == "SessionClose" {
					rounds = 1
				}
				for round := 0; round < rounds; round++ {
					st := openRaw(t, s, p, id)
					payload := randomBytes(100, uint64(round))
					hdr := rawHeader(0, uint8(typeData), 0, id, uint32(len(payload)))
					var rest []byte
					var first []byte
					rc := primeDirect(t, s, p, st)
					s.hooks.holdParked.Store(true) // the token a direct Read leaves stays for the next
					if midHeader {
						p.send(hdr[:7])
						rest = append(append([]byte{}, hdr[7:]...), payload...)
					} else {
						rest = payload[50:]
						p.send(hdr, payload[:50])
						// A direct read returns the half at once (the receive loop keeps a
						// frame's bytes until the frame, or a chunk, is complete).
						select {
						case r := <-rc:
							if r.err != nil || !bytes.Equal(r.b, payload[:len(r.b)]) {
								t.Fatalf("round %d: first half: %d bytes, %v", round, len(r.b), r.err)
							}
							first = r.b
							rc = goRead(st, 1000)
						case <-time.After(3 * time.Second):
							t.Fatalf("round %d: the direct Read did not return the first half", round)
						}
					}
					waitFor(t, func() bool { return holderIs(s, st) })
					s.hooks.holdParked.Store(false)
					t0 := time.Now()
					k.kick(s, st)
					var r readRes
					select {
					case r = <-rc:
					case <-time.After(2 * time.Second):
						p.send(rest) // let it go
						t.Fatalf("round %d: Read not ended 2s after %s (holder: %v)", round, k.name, holderIs(s, st))
					}
					if d := r.at.Sub(t0); d > kickLatency+20*time.Millisecond {
						t.Errorf("round %d: Read ended %v after %s", round, d, k.name)
					}
					if !errors.Is(r.err, k.want) || len(r.b) != 0 {
						t.Fatalf("round %d: Read after %s: %d bytes, %v; want %v", round, k.name, len(r.b), r.err, k.want)
					}
					if k.name == "SessionClose" {
						return
					}
					// The rest of the frame follows, then data for the other stream.
					p.send(rest)
					msg := randomBytes(777, uint64(round)+1000)
					p.frame(typeData, 0, 1, msg)
					if k.want == ErrTimeout {
						st.SetReadDeadline(time.Time{})
						want := payload[len(first):]
						got := make([]byte, len(want))
						st.SetReadDeadline(time.Now().Add(3 * time.Second))
						if _, err := io.ReadFull(st, got); err != nil || !bytes.Equal(got, want) {
							t.Fatalf("round %d: after the timeout, read %v; data intact %v", round, err, bytes.Equal(got, want))
						}
						st.SetReadDeadline(time.Time{})
					}
					got := make([]byte, len(msg))
					other.SetReadDeadline(time.Now().Add(3 * time.Second))
					if _, err := io.ReadFull(other, got); err != nil || !bytes.Equal(got, msg) {
						t.Fatalf("round %d: other stream read %v, intact %v", round, err, bytes.Equal(got, msg))
					}
					other.SetReadDeadline(time.Time{})
					st.Reset()
					id += 2
				}
				if err := s.Err(); err != nil {
					t.Fatalf("session ended: %v", err)
				}
			})
		}
	}
}

// readAllRandom reads st to EOF with a random buffer size (1 byte to 1 MiB) for every Read.
func readAllRandom(st *Stream, rng *rand.Rand, bufs [][]byte) ([]byte, error) {
	var out []byte
	for {
		b := bufs[rng.IntN(len(bufs))]
		b = b[:1+rng.IntN(len(b))]
		n, err := st.Read(b)
		out = append(out, b[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// randomBufs are read buffers of assorted sizes up to 1 MiB.
func randomBufs() [][]byte {
	return [][]byte{make([]byte, 1), make([]byte, 7), make([]byte, 100), make([]byte, 4096),
		make([]byte, 40000), make([]byte, 70000), make([]byte, 1<<20)}
}

// TestDirectManyStreamsIntegrity: many streams echoed at once, in both directions of
// opening, with random payload and write sizes and random Read buffer sizes (1 byte to
// 1 MiB), so direct reads, buffered data and the receive loop all interleave; every byte
// must come back in order.
func TestDirectManyStreamsIntegrity(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		client, server := sessionPair(t, nil, nil)
		manyStreamsIntegrity(t, client, server)
	})
	t.Run("pipe", func(t *testing.T) { // synchronous, unbuffered: writes wait for the reader
		c, s := net.Pipe()
		client, server := startPair(t, c, s, nil, nil)
		manyStreamsIntegrity(t, client, server)
	})
}

func manyStreamsIntegrity(t *testing.T, client, server *Session) {
	ctx := testCtx(t, 20*time.Second)
	go serveEcho(ctx, server)
	go serveEcho(ctx, client)
	const streams = 12
	errc := make(chan error, streams)
	for i := range streams {
		go func() {
			opener := client
			if i%3 == 2 {
				opener = server
			}
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			size := rng.IntN(600 << 10)
			if i%4 == 0 {
				size = rng.IntN(64)
			}
			data := randomBytes(size, uint64(i)+77)
			st, err := opener.Open(ctx)
			if err != nil {
				errc <- err
				return
			}
			st.SetWriteDeadline(time.Now().Add(15 * time.Second))
			werr := make(chan error, 1)
			go func() {
				wr := rand.New(rand.NewPCG(uint64(i), 43))
				rest := data
				for len(rest) > 0 {
					n := min(len(rest), 1+wr.IntN(200<<10))
					if _, err := st.Write(rest[:n]); err != nil {
						werr <- err
						return
					}
					rest = rest[n:]
				}
				werr <- st.CloseWrite()
			}()
			got, err := readAllRandom(st, rng, randomBufs())
			if err == nil {
				err = <-werr
			}
			if err == nil && sha(got) != sha(data) {
				err = fmt.Errorf("stream %d: echo of %d bytes differs (got %d)", i, len(data), len(got))
			}
			st.Close()
			errc <- err
		}()
	}
	waitStreams(t, ctx, errc, streams)
}

// TestDirectSplitFrames: a raw peer interleaves frames of several streams and writes them
// in odd pieces (byte by byte around headers, random cuts elsewhere, with small pauses), so
// direct readers and the receive loop keep stopping mid-header and mid-payload and resuming
// each other's frames; every stream must get its bytes intact, FIN at the end.
func TestDirectSplitFrames(t *testing.T) {
	s, p := rawPeerForDirect(t)
	const streams = 6
	rng := rand.New(rand.NewPCG(1, 2))
	datas := make([][]byte, streams)
	var wire []byte
	offs := make([]int, streams)
	for i := range streams {
		datas[i] = randomBytes(1+rng.IntN(120<<10), uint64(i)+5) // under half the window: no credit, so no tuning ping whose pong could land mid-frame
		id := uint32(2*i + 1)
		wire = append(wire, rawHeader(0, uint8(typeWindowUpdate), flagSYN, id, 0)...)
	}
	for {
		live := 0
		for i := range streams {
			if offs[i] < len(datas[i]) {
				live++
				n := min(len(datas[i])-offs[i], 1+rng.IntN(9000))
				flags := uint16(0)
				if offs[i]+n == len(datas[i]) {
					flags = flagFIN
				}
				wire = append(wire, rawHeader(0, uint8(typeData), flags, uint32(2*i+1), uint32(n))...)
				wire = append(wire, datas[i][offs[i]:offs[i]+n]...)
				offs[i] += n
			}
		}
		if live == 0 {
			break
		}
	}
	results := make(chan error, streams)
	go func() {
		for i := range streams {
			st, err := s.AcceptStream(testCtx(t, 5*time.Second))
			if err != nil {
				results <- err
				return
			}
			go func() {
				rr := rand.New(rand.NewPCG(uint64(i), 9))
				got, err := readAllRandom(st, rr, randomBufs())
				idx := int(st.ID()-1) / 2
				if err == nil && !bytes.Equal(got, datas[idx]) {
					err = fmt.Errorf("stream %d: %d bytes, want %d, intact prefix %v", st.ID(), len(got), len(datas[idx]), bytes.HasPrefix(datas[idx], got))
				}
				results <- err
			}()
		}
	}()
	// Write the wire in odd pieces.
	for off := 0; off < len(wire); {
		var n int
		switch rng.IntN(4) {
		case 0:
			n = 1
		case 1:
			n = 1 + rng.IntN(13)
		case 2:
			n = 1 + rng.IntN(3000)
		default:
			n = 1 + rng.IntN(40000)
		}
		n = min(n, len(wire)-off)
		p.send(wire[off : off+n])
		off += n
		if rng.IntN(50) == 0 {
			time.Sleep(time.Duration(rng.IntN(700)) * time.Microsecond)
		}
	}
	for range streams {
		select {
		case err := <-results:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("streams did not finish")
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestDirectConcurrentReads: several goroutines Read the same stream at once with random
// buffer sizes while other streams carry data; together they must get every byte exactly
// once (compared as a byte histogram and count), and all must end with EOF.
func TestDirectConcurrentReads(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	go serveEcho(ctx, server)
	for round := range 4 {
		data := randomBytes(300<<10+round*1000, uint64(round))
		st, err := client.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			rest := data
			for len(rest) > 0 {
				n := min(len(rest), 1+len(rest)%30000)
				st.Write(rest[:n])
				rest = rest[n:]
			}
			st.CloseWrite()
		}()
		// A second stream echoing alongside, checked in full.
		side, err := client.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sideData := randomBytes(50<<10, uint64(round)+100)
		sideErr := make(chan error, 1)
		go func() { sideErr <- echoCheck(side, side.CloseWrite, sideData) }()

		const readers = 4
		var hist [readers][256]int
		errc := make(chan error, readers)
		var eof atomic.Bool
		for r := range readers {
			go func() {
				rng := rand.New(rand.NewPCG(uint64(r), uint64(round)))
				bufs := randomBufs()
				for {
					b := bufs[rng.IntN(len(bufs))]
					b = b[:1+rng.IntN(len(b))]
					n, err := st.Read(b)
					for _, c := range b[:n] {
						hist[r][c]++
					}
					if err != nil {
						if err == io.EOF {
							err = nil
							if !eof.Swap(true) {
								// The FIN wakes one waiting Read only
								// (TestDirectConcurrentReadsFIN): release the others.
								st.SetReadDeadline(time.Now())
							}
						} else if eof.Load() && errors.Is(err, ErrTimeout) {
							err = nil
						}
						errc <- err
						return
					}
				}
			}()
		}
		for range readers {
			select {
			case err := <-errc:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("round %d: concurrent readers did not all end", round)
			}
		}
		var want, got [256]int
		for _, c := range data {
			want[c]++
		}
		for r := range readers {
			for c := range 256 {
				got[c] += hist[r][c]
			}
		}
		if got != want {
			t.Fatalf("round %d: bytes read by the concurrent readers differ from the bytes sent", round)
		}
		if err := <-sideErr; err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
}

// TestDirectConcurrentReadsFIN: three Reads of one stream wait, nothing buffered; the peer
// half-closes. All three must return io.EOF: the FIN is one notification of the stream's
// readReady channel (capacity 1), so a Read that returns EOF, an error, or leaves data
// buffered passes it on to the next waiting Read.
func TestDirectConcurrentReadsFIN(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 10*time.Second)
	st, sst := openedStream(t, ctx, client, server)
	sst.Write([]byte{2})
	io.ReadFull(st, make([]byte, 1))
	const readers = 3
	rcs := make([]chan readRes, readers)
	for i := range rcs {
		rcs[i] = goRead(st, 100)
	}
	waitFor(t, func() bool { // all three wait: one reading the connection, or counted as waiters
		client.mu.Lock()
		defer client.mu.Unlock()
		n := st.rwaits
		if client.rt.holder == st {
			n++
		}
		return n == readers
	})
	sst.CloseWrite()
	stuck := 0
	for i, rc := range rcs {
		select {
		case r := <-rc:
			if r.err != io.EOF {
				t.Errorf("Read %d: %d bytes, %v; want EOF", i, len(r.b), r.err)
			}
		case <-time.After(time.Second):
			stuck++
		}
	}
	if stuck > 0 {
		st.Reset() // ends the stuck Reads
		for _, rc := range rcs {
			select {
			case <-rc:
			default:
			}
		}
		t.Errorf("%d of %d concurrent Reads still blocked 1s after the peer's FIN: one readReady notification wakes one Read", stuck, readers)
	}
}

// TestDirectIdleReaderOthersLive: a stream's Read reads directly once and then its
// goroutine goes away (the token is left parked). Everything else must keep working within
// a few milliseconds: Accept of a new stream, Ping, another stream's Read, a Write waiting
// for window, Open, and keepalive. Each check is repeated and its worst latency bounded.
// Keepalive pings every 30 ms of silence; its timeout is long, since a loaded machine
// running -race can starve the peer's answer for 100 ms: while idle, the pongs must be read.
func TestDirectIdleReaderOthersLive(t *testing.T) {
	ccfg := testConfig()
	ccfg.KeepAliveInterval = 30 * time.Millisecond
	ccfg.KeepAliveTimeout = 5 * time.Second
	client, server := sessionPair(t, ccfg, nil)
	ctx := testCtx(t, 10*time.Second)
	a, sa := openedStream(t, ctx, client, server)
	one := make([]byte, 1)
	// bound is generous for the race detector on two CPUs; the lease is 1 ms.
	const bound = 150 * time.Millisecond
	var worst [5]time.Duration
	note := func(i int, d time.Duration) {
		if d > worst[i] {
			worst[i] = d
		}
	}
	for round := range 20 {
		// a reads once, directly if it can, then nobody reads a again.
		sa.Write([]byte{1})
		if _, err := io.ReadFull(a, one); err != nil {
			t.Fatal(err)
		}
		switch round % 5 {
		case 0: // the server opens a stream: the client's Accept must see it.
			t0 := time.Now()
			sst, err := server.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sst.Write([]byte("hi"))
			cst, err := client.AcceptStream(testCtx(t, 2*time.Second))
			if err != nil {
				t.Fatalf("round %d: Accept: %v", round, err)
			}
			note(0, time.Since(t0))
			cst.Close()
			sst.Close()
		case 1: // Ping
			t0 := time.Now()
			if _, err := client.Ping(testCtx(t, 2*time.Second)); err != nil {
				t.Fatalf("round %d: Ping: %v", round, err)
			}
			note(1, time.Since(t0))
		case 2: // another stream's Read, no deadline
			b, err := client.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b.Write([]byte{9})
			sb := acceptOne(t, server)
			io.ReadFull(sb, one)
			t0 := time.Now()
			sb.Write([]byte{3})
			rc := goRead(b, 10)
			select {
			case r := <-rc:
				if r.err != nil || len(r.b) != 1 {
					t.Fatalf("round %d: other Read: %v", round, r.err)
				}
			case <-time.After(2 * time.Second):
				b.Reset()
				t.Fatalf("round %d: another stream's Read got nothing within 2s", round)
			}
			note(2, time.Since(t0))
			b.Close()
			sb.Close()
		case 3: // a Write larger than the window: the peer's credit must be read
			b, err := client.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			big := randomBytes(600<<10, uint64(round))
			b.SetWriteDeadline(time.Now().Add(3 * time.Second))
			go func() {
				sb, err := server.AcceptStream(ctx)
				if err == nil {
					io.Copy(io.Discard, sb)
					sb.Close()
				}
			}()
			t0 := time.Now()
			if _, err := b.Write(big); err != nil {
				t.Fatalf("round %d: Write waiting for window: %v", round, err)
			}
			note(3, time.Since(t0))
			b.Close()
		case 4: // keepalive: stay idle past several keepalive intervals; the pongs are read
			// Idle (the behaviour under test) until four keepalive pongs were read: several
			// keepalive intervals with the token parked, within the 2 s the pongs are allowed.
			before, idle := client.Stats().FramesReceived, time.Now()
			waitFor(t, func() bool { return client.Stats().FramesReceived >= before+4 })
			if d := time.Since(idle); d > 2*time.Second {
				t.Fatalf("round %d: four keepalive pongs took %v of idling with the token parked", round, d)
			}
			if err := client.Err(); err != nil {
				t.Fatalf("round %d: session ended while idle with the token parked: %v", round, err)
			}
			t0 := time.Now()
			if _, err := client.Ping(testCtx(t, 2*time.Second)); err != nil {
				t.Fatalf("round %d: Ping after idling: %v", round, err)
			}
			note(4, time.Since(t0))
		}
	}
	t.Logf("worst latencies: accept %v ping %v other-read %v write %v ping-after-idle %v", worst[0], worst[1], worst[2], worst[3], worst[4])
	for i, what := range []string{"Accept", "Ping", "another stream's Read", "Write waiting for window", "Ping after idle"} {
		lim := bound
		if i == 3 {
			lim = 2 * time.Second // 600 KiB through a 256 KiB window
		}
		if worst[i] > lim {
			t.Errorf("%s took %v with a parked token left by an idle reader", what, worst[i])
		}
	}
}

// waitStreams takes n results from errc, one per stream goroutine, failing the test on the
// first error or when ctx ends first.
func waitStreams(t *testing.T, ctx context.Context, errc <-chan error, n int) {
	t.Helper()
	for range n {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("streams did not finish")
		}
	}
}

// readAllKicked reads st to EOF like readAllRandom, but a deadline may be set on st at any
// time by someone else: on ErrTimeout the deadline is cleared and reading goes on.
func readAllKicked(st net.Conn, rng *rand.Rand, bufs [][]byte, timeouts *atomic.Int64) ([]byte, error) {
	var out []byte
	for {
		b := bufs[rng.IntN(len(bufs))]
		b = b[:1+rng.IntN(len(b))]
		n, err := st.Read(b)
		out = append(out, b[:n]...)
		switch {
		case err == io.EOF:
			return out, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			timeouts.Add(1)
			st.SetReadDeadline(time.Time{})
		case err != nil:
			return out, err
		}
	}
}

// kickedEcho writes data to st in random pieces of at most maxPiece bytes, then half-closes,
// while a kicker calls kick after random pauses of up to pauseUs microseconds, and reads the
// echo back with readAllKicked (random buffers, timeouts cleared and counted).
func kickedEcho(st *Stream, data []byte, seed uint64, maxPiece, pauseUs int, kick func(*rand.Rand), timeouts *atomic.Int64) ([]byte, error) {
	kstop, kdone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(kdone)
		kr := rand.New(rand.NewPCG(seed, 1))
		for !isClosed(kstop) {
			time.Sleep(time.Duration(kr.IntN(pauseUs)) * time.Microsecond)
			kick(kr)
		}
	}()
	go func() {
		wr := rand.New(rand.NewPCG(seed, 2))
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+wr.IntN(maxPiece))
			if _, err := st.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
		st.CloseWrite()
	}()
	got, err := readAllKicked(st, rand.New(rand.NewPCG(seed, 3)), randomBufs(), timeouts)
	close(kstop)
	<-kdone
	return got, err
}

// TestDirectKickStorm: while many streams are echoed, other goroutines keep setting short
// read deadlines on their readers (kicking direct reads at random points of the frames) and
// reset some extra streams in the middle of their Reads. Readers that time out clear the
// deadline and read on: every echoed byte must still arrive in order; reset readers must end
// promptly with ErrStreamReset.
func TestDirectKickStorm(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 20*time.Second)
	go serveEcho(ctx, server)
	const streams = 8
	var timeouts atomic.Int64
	stop := make(chan struct{})
	errc := make(chan error, 2*streams)
	for i := range streams {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			data := randomBytes(rng.IntN(3<<20), uint64(i)+9)
			st, err := client.Open(ctx)
			if err != nil {
				errc <- err
				return
			}
			got, err := kickedEcho(st, data, uint64(i), 50<<10, 500, func(kr *rand.Rand) {
				st.SetReadDeadline(time.Now().Add(time.Duration(kr.IntN(300)) * time.Microsecond))
			}, &timeouts)
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("stream %d: %d bytes back of %d, intact prefix %v", st.ID(), len(got), len(data), bytes.HasPrefix(data, got))
			}
			st.Close()
			errc <- err
		}()
		// A victim: reset while its Read blocks, at a random moment.
		go func() {
			st, err := client.Open(ctx)
			if err != nil {
				errc <- err
				return
			}
			st.Write([]byte("x"))
			rc := goRead(st, 1+i*1000)
			first := <-rc // the echo
			if first.err != nil {
				errc <- first.err
				return
			}
			rc = goRead(st, 1+i*1000)
			time.Sleep(time.Duration(i*300) * time.Microsecond)
			t0 := time.Now()
			st.Reset()
			select {
			case r := <-rc:
				if !errors.Is(r.err, ErrStreamReset) {
					errc <- fmt.Errorf("victim %d: Read after Reset: %v", st.ID(), r.err)
					return
				}
				if d := r.at.Sub(t0); d > kickLatency {
					errc <- fmt.Errorf("victim %d: Read ended %v after Reset", st.ID(), d)
					return
				}
				errc <- nil
			case <-time.After(2 * time.Second):
				errc <- fmt.Errorf("victim %d: Read not ended 2s after Reset", st.ID())
			}
		}()
	}
	defer close(stop)
	waitStreams(t, ctx, errc, 2*streams)
	t.Logf("%d Reads timed out and were retried", timeouts.Load())
}

// TestDirectReadsAcrossPeers: against every peer, our streams are echoed by their side while
// our readers use random buffer sizes and get kicked by short read deadlines, and their
// streams are echoed by ours (our io.Copy reads directly); every byte must come back intact.
func TestDirectReadsAcrossPeers(t *testing.T) {
	forEachPeer(t, allPeers, peerOpts{}, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 20*time.Second)
		go peerEcho(ctx, p)
		go serveEcho(ctx, ours)
		const streams = 6
		var timeouts atomic.Int64
		errc := make(chan error, 2*streams)
		for i := range streams {
			go func() { // ours opens, theirs echoes
				rng := rand.New(rand.NewPCG(uint64(i), 11))
				data := randomBytes(rng.IntN(1<<20), uint64(i)+21)
				st, err := ours.Open(ctx)
				if err != nil {
					errc <- err
					return
				}
				got, err := kickedEcho(st, data, uint64(i)+100, 100<<10, 1000, func(kr *rand.Rand) {
					if i%2 == 0 {
						st.SetReadDeadline(time.Now().Add(time.Duration(kr.IntN(200)) * time.Microsecond))
					}
				}, &timeouts)
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("our stream %d: %d bytes back of %d", st.ID(), len(got), len(data))
				}
				st.Close()
				errc <- err
			}()
			go func() { // theirs opens, ours echoes
				data := randomBytes(1+i*97_000, uint64(i)+31)
				pst, err := p.Open(ctx)
				if err != nil {
					errc <- err
					return
				}
				err = echoCheck(pst, func() error { return peerHalfClose(pst) }, data)
				pst.Close()
				errc <- err
			}()
		}
		waitStreams(t, ctx, errc, 2*streams)
		if err := ours.Err(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d Reads timed out and were retried", timeouts.Load())
	})
}

// TestDirectKickDuringRefusalBackpressure: a direct reader handles every frame it reads as
// the receive loop would, including a SYN past the accept backlog while the refusal queue is
// full, when it waits for the send loop (up to WriteTimeout). Reset or a read deadline must
// end that wait at once (the stream's readReady is notified); the next reader resumes it.
// The case is forced with hooks: st's Read holds the token (primeDirect), the send loop stops
// before its next write (beforeSendLoopWrite) so no refusal leaves the queue, and the kick
// comes once inRefusalWait reports the direct reader waiting.
func TestDirectKickDuringRefusalBackpressure(t *testing.T) {
	for _, kick := range []string{"Reset", "SetReadDeadline"} {
		t.Run(kick, func(t *testing.T) {
			cfg := hostileConfig()
			cfg.AcceptBacklog = 2
			cfg.WriteTimeout = 2 * time.Second
			s, p := hostileSession(t, cfg, false, nil)
			p.autoPong = true
			p.start()
			waitFor(t, func() bool { // the startup probes are answered: no pong is written later
				s.mu.Lock()
				defer s.mu.Unlock()
				return len(s.pings.out) == 0 && s.rtt > 0
			})
			st := openRaw(t, s, p, 1)
			rc := primeDirect(t, s, p, st)

			release := make(chan struct{})
			hold := func() { <-release }
			s.hooks.beforeSendLoopWrite.Store(&hold)
			waiting := make(chan struct{})
			var once sync.Once
			inWait := func(own *Stream) {
				if own == st {
					once.Do(func() { close(waiting) })
				}
			}
			s.hooks.inRefusalWait.Store(&inWait)
			defer func() { // the send loop writes the refusals before the session closes
				s.hooks.inRefusalWait.Store(nil)
				s.hooks.beforeSendLoopWrite.Store(nil)
				close(release)
			}()

			// SYNs for the backlog, then enough to fill the refusal queue, then one more.
			var flood []byte
			for i := 1; i <= cfg.AcceptBacklog+refuseBacklog+1; i++ {
				flood = append(flood, rawHeader(0, uint8(typeWindowUpdate), flagSYN, uint32(2*i+1), 0)...)
			}
			p.send(flood)
			select {
			case <-waiting:
			case r := <-rc:
				t.Fatalf("the direct Read returned (%d bytes, %v) instead of waiting for room for a refusal", len(r.b), r.err)
			case <-time.After(5 * time.Second):
				t.Fatal("the direct reader did not wait for room for a refusal within 5 s")
			}
			held := holderIs(s, st)
			t0 := time.Now()
			want := ErrStreamReset
			if kick == "Reset" {
				st.Reset()
			} else {
				st.SetReadDeadline(time.Now())
				want = ErrTimeout
			}
			var r readRes
			select {
			case r = <-rc:
			case <-time.After(5 * time.Second):
				t.Fatalf("Read still blocked 5 s after %s", kick)
			}
			d := r.at.Sub(t0)
			t.Logf("holder when kicked: %v; Read ended after %v with %v", held, d, r.err)
			if d > kickLatency || !errors.Is(r.err, want) {
				t.Errorf("Read blocked in a direct read ended %v after %s, with %v (want at once, %v): "+
					"the direct reader was waiting in receiver.refuse for the send loop, which no kick interrupts",
					d, kick, r.err, want)
			}
		})
	}
}

// TestDirectSessionEndDuringDirectRead: the session ends while a Read holds the token in a
// direct read: a local Close, the peer hanging up, a protocol violation read by the direct
// reader itself (in the middle of its wait), a GoAway with an error code. The Read must
// return promptly with an error matching ErrSessionClosed, and the session's goroutines must
// finish (Wait) within a second.
func TestDirectSessionEndDuringDirectRead(t *testing.T) {
	ends := []struct {
		name string
		end  func(s *Session, p *rawPeer)
	}{
		{"LocalClose", func(s *Session, p *rawPeer) { go s.Close() }},
		{"PeerHangUp", func(s *Session, p *rawPeer) { p.conn.Close() }},
		{"PeerHalfClose", func(s *Session, p *rawPeer) { p.conn.(*net.TCPConn).CloseWrite() }},
		{"BadVersion", func(s *Session, p *rawPeer) { p.send(rawHeader(9, uint8(typeData), 0, 1, 0)) }},
		{"BadVersionSplit", func(s *Session, p *rawPeer) {
			// The header arrives in two pieces: the rest is sent once the reader has read
			// the first five bytes.
			h := rawHeader(9, uint8(typePing), flagSYN, 0, 0)
			read := make(chan int, 1)
			hook := func(n int) {
				select {
				case read <- n:
				default:
				}
			}
			s.hooks.afterConnRead.Store(&hook)
			p.send(h[:5])
			if n := <-read; n != 5 {
				p.t.Errorf("the reader read %d bytes of the first piece, want 5", n)
			}
			s.hooks.afterConnRead.Store(nil)
			p.send(h[5:])
		}},
		{"GoAwayError", func(s *Session, p *rawPeer) { p.send(rawHeader(0, uint8(typeGoAway), 0, 0, GoAwayInternalError)) }},
	}
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			s, p := rawPeerForDirect(t)
			st := openRaw(t, s, p, 1)
			rc := primeDirect(t, s, p, st)
			held := holderIs(s, st)
			t0 := time.Now()
			e.end(s, p)
			select {
			case r := <-rc:
				if !errors.Is(r.err, ErrSessionClosed) {
					t.Fatalf("Read: %d bytes, %v; want the session's error", len(r.b), r.err)
				}
				if d := r.at.Sub(t0); d > kickLatency {
					t.Errorf("Read ended %v after the session's end (holder %v)", d, held)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("Read still blocked 2s after the session's end (holder %v, session err %v)", held, s.Err())
			}
			if e.name != "LocalClose" {
				s.Close()
			}
			p.conn.Close()
			waited := make(chan struct{})
			go func() { s.Wait(); close(waited) }()
			select {
			case <-waited:
			case <-time.After(time.Second):
				t.Fatal("session goroutines still running 1s after the end")
			}
		})
	}
}

// TestDirectCreditOnlyForReceivedBytes: window credit must not be granted for bytes of a
// frame that have not arrived yet. The peer sends one 200 KiB frame; the stream's Read takes
// the first byte (a direct read) or the first 64 KiB chunk. The whole frame left the peer's
// credit when its header arrived, so the credit computed then must count the rest of the
// frame as used (Stream.pending); otherwise the peer is granted ~200 KiB it may send while
// the rest of the first frame is still coming, and a reader that stops reading ends up
// holding far more than its window (and the memory budget reserved for it).
func TestDirectCreditOnlyForReceivedBytes(t *testing.T) {
	for _, oneByte := range []bool{true, false} {
		name := "direct1byte"
		if !oneByte {
			name = "chunked64k"
		}
		t.Run(name, func(t *testing.T) {
			s, p := rawPeerForDirect(t)
			st := openRaw(t, s, p, 1) // outstanding: window - 1, nothing to credit yet
			const frame = 200 << 10
			payload := randomBytes(frame, 3)
			var rc chan readRes
			// Whole frames only: the raw peer's reader answers the session's pings (window
			// auto-tuning sends one) on the same connection.
			if oneByte {
				rc = primeDirect(t, s, p, st) // a 1000-byte Read holding the token
			} else {
				rc = goRead(st, 64<<10) // the receive loop delivers 64 KiB chunks
			}
			p.send(rawHeader(0, uint8(typeData), 0, 1, frame), payload)
			r := <-rc
			if r.err != nil || len(r.b) == 0 {
				t.Fatalf("read: %v", r.err)
			}
			// Credit the session granted for the stream.
			var granted uint32
			deadline := time.After(300 * time.Millisecond)
		collect:
			for {
				select {
				case f := <-p.frames:
					if f.typ == typeWindowUpdate && f.id == 1 {
						granted += f.length
					}
				case <-deadline:
					break collect
				}
			}
			// The peer sends all the credit it holds; nobody reads.
			sent := int(s.Stats().BytesReceived) // data bytes so far, all on stream 1
			credit := initialWindow - sent + int(granted)
			if err := s.Err(); err != nil {
				t.Fatalf("session ended: %v (granted %d)", err, granted)
			}
			if credit > 0 {
				big := randomBytes(credit, 4)
				for off := 0; off < len(big); off += 60 << 10 {
					end := min(len(big), off+60<<10)
					p.send(rawHeader(0, uint8(typeData), 0, 1, uint32(end-off)), big[off:end])
				}
			}
			waitFor(t, func() bool { return s.Stats().BytesReceived >= uint64(sent+max(credit, 0)) })
			waitFor(t, func() bool { // the last frame's payload has arrived too
				st.s.mu.Lock()
				defer st.s.mu.Unlock()
				return st.pending == 0
			})
			st.s.mu.Lock()
			buffered, window, recvErr := st.buf.len(), st.window, st.cause
			st.s.mu.Unlock()
			t.Logf("granted %d bytes of credit during the frame; buffered %d, window %d, stream error %v", granted, buffered, window, recvErr)
			if recvErr != nil {
				t.Fatalf("stream reset: %v", recvErr)
			}
			if buffered > int(window) {
				t.Errorf("stream holds %d unread bytes, more than its %d-byte window: credit was granted for "+
					"bytes of a frame still in flight", buffered, window)
			}
		})
	}
}

// TestDirectSmallReadTakesFrameWhole: a direct Read whose buffer is smaller than the frame it
// meets (io.Copy's 8 KiB, a bufio.Reader's 4 KiB) does not read the connection one buffer at
// a time: the frame's payload goes into the stream's buffer in reads of up to 64 KiB, and the
// Reads after it are served from memory.
func TestDirectSmallReadTakesFrameWhole(t *testing.T) {
	s, p := rawPeerForDirect(t)
	st := openRaw(t, s, p, 1)
	payload := randomBytes(64<<10, 5)
	rc := primeDirect(t, s, p, st) // a direct Read of up to 1000 bytes holds the token
	p.frame(typeData, 0, 1, payload)
	r := <-rc
	if r.err != nil || !bytes.Equal(r.b, payload[:len(r.b)]) || len(r.b) == 0 {
		t.Fatalf("first Read: %d bytes, %v", len(r.b), r.err)
	}
	s.mu.Lock()
	buffered := st.buf.len()
	s.mu.Unlock()
	if buffered != len(payload)-len(r.b) {
		t.Fatalf("after a %d-byte Read of a %d-byte frame, %d bytes buffered: the frame was read a Read at a time", len(r.b), len(payload), buffered)
	}
	rest := make([]byte, buffered)
	if _, err := io.ReadFull(st, rest); err != nil || !bytes.Equal(rest, payload[len(r.b):]) {
		t.Fatalf("rest of the frame: %v", err)
	}
}

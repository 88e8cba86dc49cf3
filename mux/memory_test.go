package mux

import (
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// The tests in this file protect the memory bound: all receive windows together stay within
// MaxSessionMemory (Open fails with ErrMemoryBudget, incoming streams are refused, a peer that
// fills every window cannot make the session hold more), and buffered data costs the heap
// about what it holds.

// heapAfterGC returns the heap in use after two collections (the second drops what the
// first moved to the sync.Pools' victim caches).
func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// TestFragmentedDataStaysWithinBudget: a peer fills every stream's window with frames whose
// sizes alternate so that, stored one frame per chunk, they would waste about half of each
// chunk; the application reads nothing. The heap the buffered data holds stays within a
// quarter above MaxSessionMemory.
func TestFragmentedDataStaysWithinBudget(t *testing.T) {
	// Alternating sizes that waste half a chunk each if stored one per chunk; frames of four
	// fifths of a large chunk, each left in its own chunk (the packing's worst case: 1.25x);
	// frames just over a small chunk, each taking a large one unless packed.
	patterns := [][2]int{{1, 4096}, {2, 4096}, {100, 4000}, {4097, 61440}, {52430, 52430}, {4097, 4097}}
	const perPattern = 4
	streams := len(patterns) * perPattern
	cfg := hostileConfig()
	cfg.MaxSessionMemory = streams * initialWindow
	s, p := hostileServer(t, cfg)
	p.start()
	heap0 := heapAfterGC()
	big := make([]byte, 64<<10)
	for i := range streams {
		id := uint32(2*i + 1)
		pat := patterns[i/perPattern]
		p.frame(typeWindowUpdate, flagSYN, id, nil)
		for left, k := initialWindow, 0; left > 0; k++ {
			n := min(pat[k%2], left)
			p.frame(typeData, 0, id, big[:n])
			left -= n
		}
	}
	waitFor(t, func() bool { return s.Stats().BytesReceived >= uint64(streams*initialWindow) })
	// The last frame may still be on its way into a buffer: wait until every byte is stored.
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, st := range s.streams {
			if st.buf.len() != initialWindow {
				return false
			}
		}
		return len(s.streams) == streams
	})
	grown := heapAfterGC() - heap0
	limit := int64(cfg.MaxSessionMemory) * 5 / 4
	t.Logf("heap grew by %d bytes (%.2fx the %d-byte budget)", grown, float64(grown)/float64(cfg.MaxSessionMemory), cfg.MaxSessionMemory)
	if grown > limit {
		t.Fatalf("heap grew by %d bytes, more than 1.25x the %d-byte budget", grown, cfg.MaxSessionMemory)
	}
}

// TestHostileMemoryBudget: a peer that opens streams and fills every window while the
// application never reads. Each stream reserves its 256 KiB window from MaxSessionMemory; once
// the budget is spent, further SYNs are refused with RST, so buffered data never exceeds the
// budget; reading and closing the streams returns the memory and new streams work again.
func TestHostileMemoryBudget(t *testing.T) {
	cfg := hostileConfig()
	cfg.MaxSessionMemory = 4 * initialWindow
	s, p := hostileServer(t, cfg)
	p.start()
	heap0 := heapInUse()
	full := make([]byte, initialWindow)
	for i := range 10 {
		id := uint32(2*i + 1)
		p.frame(typeData, flagSYN, id, full)
	}
	for i := 4; i < 10; i++ {
		p.expect(5*time.Second, "RST for a stream past the budget", isRST(uint32(2*i+1)))
	}
	waitFor(t, func() bool { return s.Stats().BytesReceived >= 10*initialWindow })
	st := s.Stats()
	if st.MemoryReserved > st.MemoryLimit || st.StreamsRefused != 6 || st.Streams != 4 {
		t.Fatalf("reserved %d of %d, refused %d, streams %d; want within budget, 6 refused, 4 live",
			st.MemoryReserved, st.MemoryLimit, st.StreamsRefused, st.Streams)
	}
	if grown := int64(heapInUse()) - int64(heap0); grown > int64(cfg.MaxSessionMemory)+4<<20 {
		t.Errorf("heap grew by %d bytes with a %d-byte budget", grown, cfg.MaxSessionMemory)
	}
	// One more byte on a full stream is beyond its window: RST, not buffered.
	p.frame(typeData, 0, 1, []byte("x"))
	p.expect(5*time.Second, "RST for stream 1", isRST(1))
	// The backlog holds streams 1..7: read the live ones in full, then close them all.
	for range 4 {
		a := acceptOne(t, s)
		if a.ID() == 1 {
			a.Close()
			continue
		}
		a.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := io.ReadFull(a, make([]byte, initialWindow)); err != nil {
			t.Fatalf("stream %d: read %d: %v", a.ID(), n, err)
		}
		a.Close()
		p.frame(typeWindowUpdate, flagFIN, a.ID(), nil)
	}
	waitFor(t, func() bool { return s.NumStreams() == 0 && s.Stats().MemoryReserved == 0 })
	checkLegitStream(t, s, p, 101)
}

// TestMemoryBudget: streams reserve their windows from MaxSessionMemory; past it Open fails
// with ErrMemoryBudget and the peer's SYNs are refused with RST, and growth stops at the
// budget, so reservations never exceed it.
func TestMemoryBudget(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSessionMemory = 4 * initialWindow
	client, server := delayedPair(t, 2*time.Millisecond, cfg, cfg)
	ctx := testCtx(t, 20*time.Second)

	var open []*Stream
	for range 4 {
		st, err := client.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, st)
	}
	if _, err := client.Open(ctx); !errors.Is(err, ErrMemoryBudget) {
		t.Fatalf("fifth Open: %v, want ErrMemoryBudget", err)
	}
	// Three of the four accepted: the server has room for one more incoming stream only after
	// a growth it cannot make. Its own opens count against its own budget.
	for range 4 {
		if _, err := server.AcceptStream(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := server.Open(ctx); !errors.Is(err, ErrMemoryBudget) {
		t.Fatalf("server Open past its budget: %v, want ErrMemoryBudget", err)
	}
	if r, l := server.Stats().MemoryReserved, server.Stats().MemoryLimit; r > l {
		t.Fatalf("reserved %d > limit %d", r, l)
	}
	// Freeing a stream frees its reservation.
	open[0].Reset()
	waitFor(t, func() bool { return client.Stats().MemoryReserved == 3*initialWindow })
	st, err := client.Open(ctx)
	if err != nil {
		t.Fatalf("Open after a reset freed memory: %v", err)
	}
	st.Close()
	for _, st := range open[1:] {
		st.Close()
	}
}

// TestMemoryBudgetRefusesIncomingAcrossPeers: a SYN our budget cannot cover (two streams'
// initial windows here) is answered with RST, whatever the peer: the opener's third stream
// fails with its reset error, and we count one refusal.
func TestMemoryBudgetRefusesIncomingAcrossPeers(t *testing.T) {
	ocfg := interopConfig()
	ocfg.MaxSessionMemory = 2 * protocolWindow
	forEachPeer(t, allPeers, peerOpts{ours: ocfg}, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 10*time.Second)
		var psts []net.Conn
		for range 3 {
			pst, err := p.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pst.Write([]byte("x"))
			psts = append(psts, pst)
		}
		psts[2].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(psts[2]); !isPeerReset(err) {
			t.Fatalf("third stream: %v, want their reset error", err)
		}
		if got := ours.Stats().StreamsRefused; got != 1 {
			t.Fatalf("we refused %d streams, want 1", got)
		}
		for _, pst := range psts {
			pst.Close()
		}
	})
}

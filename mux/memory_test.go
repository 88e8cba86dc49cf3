package mux

import (
	"runtime"
	"testing"
)

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
	patterns := [][2]int{{1, 4096}, {2, 4096}, {100, 4000}, {4097, 61440}}
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

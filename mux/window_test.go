package mux

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/muxpool/muxpool/internal/netem"
)

// delayedPair starts a client session that reaches its server through a userspace relay adding
// oneWay delay in each direction.
func delayedPair(t *testing.T, oneWay time.Duration, ccfg, scfg *Config) (*Session, *Session) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	relay, err := netem.Listen(ln.Addr().String(), netem.Config{Delay: oneWay, QueueBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	cc, err := net.Dial("tcp", relay.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return startPair(t, cc, sc, ccfg, scfg)
}

// TestWindowAutoTuneGrows: on a link with 20 ms RTT, a reader that keeps up grows its window
// well past the initial 256 KiB (toward MaxStreamWindow; how far within 24 MiB depends on the
// machine's load), and the bytes arrive intact, whether the writer hands over everything in
// one Write or writes it in pieces: 64 KiB Writes, or io.Copy's 32 KiB, fill the window with
// whole frames, and the window is used up exactly.
func TestWindowAutoTuneGrows(t *testing.T) {
	for _, piece := range []int{24 << 20, 64 << 10, 32 << 10} {
		t.Run("writes="+strconv.Itoa(piece>>10)+"KiB", func(t *testing.T) {
			client, server := delayedPair(t, 10*time.Millisecond, testConfig(), testConfig())
			ctx := testCtx(t, 30*time.Second)
			waitFor(t, func() bool { return server.RTT() > 0 && client.RTT() > 0 })
			if rtt := server.RTT(); rtt < 15*time.Millisecond {
				t.Fatalf("server RTT %v, want about 20ms through the relay", rtt)
			}

			const size = 24 << 20
			data := randomBytes(size, 7)
			go func() {
				st, err := client.Open(ctx)
				if err != nil {
					return
				}
				for off := 0; off < size; off += piece {
					if _, err := st.Write(data[off : off+piece]); err != nil {
						return
					}
				}
				st.Close()
			}()
			st, err := server.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n, sum, err := sumReader(st)
			if err != nil || n != size || sum != sha(data) {
				t.Fatalf("read %d bytes, err %v, checksum ok %v", n, err, sum == sha(data))
			}
			st.s.mu.Lock()
			window := st.window
			st.s.mu.Unlock()
			t.Logf("window %d bytes after %d growths", window, server.Stats().WindowGrowths)
			if window < 1<<20 {
				t.Errorf("window grew to %d bytes, want >= 1 MiB (4x the initial window)", window)
			}
			if g := server.Stats().WindowGrowths; g == 0 {
				t.Error("no window growth recorded")
			}
			st.Close()
		})
	}
}

// TestWindowStalledReaderDoesNotGrow: a reader that stops reading keeps the initial window, and
// the writer is held back by it.
func TestWindowStalledReaderDoesNotGrow(t *testing.T) {
	client, server := delayedPair(t, 5*time.Millisecond, testConfig(), testConfig())
	ctx := testCtx(t, 10*time.Second)
	waitFor(t, func() bool { return server.RTT() > 0 })
	cst, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cst.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := cst.Write(make([]byte, 4<<20))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("write to a stalled reader: %d bytes, %v; want a timeout", n, err)
	}
	if n != initialWindow {
		t.Errorf("wrote %d bytes into a stalled reader, want exactly the initial window %d", n, initialWindow)
	}
	sst, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sst.s.mu.Lock()
	window, buffered := sst.window, sst.buf.len()
	sst.s.mu.Unlock()
	if window != initialWindow || buffered != initialWindow {
		t.Errorf("stalled reader: window %d, buffered %d; want %d each", window, buffered, initialWindow)
	}
	if g := server.Stats().WindowGrowths; g != 0 {
		t.Errorf("%d window growths for a reader that never read", g)
	}
}

func sha(b []byte) [32]byte {
	_, sum, _ := sumReader(bytesReader(b))
	return sum
}

package mux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/pprof"
	"sync"
	"testing"
	"time"
)

// Seed corpora live in testdata/fuzz/FuzzFrameDecoder and testdata/fuzz/FuzzSessionInput
// (valid SYN + data + FIN, pings, GoAways, window abuse, fatal frames, garbage). Run with
//
//	go test -run '^$' -fuzz FuzzFrameDecoder -fuzztime 60s ./mux/
//	go test -run '^$' -fuzz FuzzSessionInput -fuzztime 60s ./mux/

// FuzzFrameDecoder checks header decoding and validation on arbitrary bytes: the accessors
// read exactly the big-endian fields, validate accepts exactly the well-formed headers and
// rejects the rest with a *ProtocolError of code 1, and encoding a decoded header gives the
// same 12 bytes back. The rest of the input is walked as a stream of frames (payload only
// after Data headers), as the receive loop does.
func FuzzFrameDecoder(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(data) >= headerSize {
			var h header
			copy(h[:], data)
			ver, typ := data[0], frameType(data[1])
			flags := uint16(data[2])<<8 | uint16(data[3])
			id := uint32(data[4])<<24 | uint32(data[5])<<16 | uint32(data[6])<<8 | uint32(data[7])
			length := uint32(data[8])<<24 | uint32(data[9])<<16 | uint32(data[10])<<8 | uint32(data[11])
			if h.version() != ver || h.typ() != typ || h.flags() != flags || h.streamID() != id || h.length() != length {
				t.Fatalf("decoded %v from % x", &h, data[:headerSize])
			}
			_ = h.String()
			_ = typ.String()

			wantOK := ver == protoVersion
			switch typ {
			case typeData, typeWindowUpdate:
				wantOK = wantOK && id != 0
			case typePing, typeGoAway:
				wantOK = wantOK && id == 0
			default:
				wantOK = false
			}
			err := h.validate()
			if (err == nil) != wantOK {
				t.Fatalf("validate(% x) = %v, want ok=%v", data[:headerSize], err, wantOK)
			}
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != GoAwayProtocolError || pe.Reason == "" {
					t.Fatalf("validate error %v (%T) is not a code-1 *ProtocolError", err, err)
				}
				return // the receive loop stops at the first invalid header
			}
			enc := appendHeader(nil, typ, flags, id, length)
			if !bytes.Equal(enc, data[:headerSize]) {
				t.Fatalf("re-encoded % x, want % x", enc, data[:headerSize])
			}
			data = data[headerSize:]
			if typ == typeData {
				if uint64(length) > uint64(len(data)) {
					return
				}
				data = data[length:]
			}
		}
	})
}

// FuzzSessionInput feeds arbitrary bytes to a Server session as its peer's side of the
// connection, with an application that accepts, reads, answers and closes every stream. The
// session must never panic or hang: it either ends (with an error matching ErrSessionClosed)
// or keeps running, stays within its memory budget, and Close plus Wait return promptly
// with every goroutine gone. Odd-length inputs hang up the peer before Close, even-length
// ones let Close end a running session.
func FuzzSessionInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		runSessionOn(t, data, false, false)
	})
}

// waitAllWithin waits for wg, failing the test with what and every goroutine's stack if it
// takes longer than d.
func waitAllWithin(t testing.TB, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Log(goroutineDump())
		t.Fatalf("%s (waited %v)", what, d)
	}
}

// goroutineDump returns every goroutine's stack, for hang reports.
func goroutineDump() string {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// FuzzSessionFrames is a structure-aware companion of FuzzSessionInput: every 3 input bytes
// become one well-formed frame header (so the fuzzer explores stream states rather than
// header validation), sent to a session whose application accepts, reads, answers and
// closes streams, and which itself opens two streams (IDs 2 and 4, or 1 and 3 when the bool
// argument makes it the client) and writes on them. Byte 0:
// type (bits 0-1) and flags SYN/ACK/FIN/RST (bits 2-5); byte 1: stream ID 0-15; byte 2: the
// Data payload length (0-255 bytes of filler), or a WindowUpdate delta picked from edge values,
// or the Ping value / GoAway code. The same invariants as FuzzSessionInput hold.
func FuzzSessionFrames(f *testing.F) {
	f.Add([]byte{0x04, 1, 5, 0x10, 1, 3}, false) // Data SYN id1 5 bytes; Data FIN id1 3 bytes
	f.Add([]byte{0x09, 2, 0, 0x00, 2, 10, 0x21, 4, 3}, false)
	f.Add([]byte{0x06, 0, 9, 0x0a, 0, 9, 0x03, 0, 0}, false) // pings, GoAway 0
	f.Add([]byte{0x05, 1, 0, 0x01, 1, 255, 0x01, 1, 255, 0x25, 1, 0}, false)
	f.Add([]byte{0x04, 2, 5, 0x09, 1, 0, 0x00, 1, 9, 0x20, 3, 0}, true) // client: peer opens 2
	f.Fuzz(func(t *testing.T, data []byte, client bool) {
		runSessionOn(t, frameInput(data), true, client)
	})
}

// runSessionOn runs one FuzzSessionInput/FuzzSessionFrames case: data is written as the
// peer's side of a net.Pipe to a Server (or Client) session with an accepting application;
// opens makes the session also open two streams of its own and write on them.
func runSessionOn(t *testing.T, data []byte, opens, client bool) {
	cfg := &Config{
		AcceptBacklog:      4,
		MaxIncomingStreams: 8,
		WriteTimeout:       time.Second,
		StreamOpenTimeout:  time.Second,
		StreamCloseTimeout: time.Second,
		MaxSessionMemory:   1 << 20,
		MaxStreamWindow:    512 << 10,
		Logger:             slog.New(slog.DiscardHandler),
	}
	ours, peer := net.Pipe()
	newSession := Server
	if client {
		newSession = Client
	}
	s, err := newSession(ours, cfg)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the peer reads (and drops) whatever the session sends
		defer wg.Done()
		io.Copy(io.Discard, peer)
	}()
	go func() { // the application
		defer wg.Done()
		for {
			st, err := s.AcceptStream(context.Background())
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				st.SetDeadline(time.Now().Add(2 * time.Second))
				io.Copy(io.Discard, io.LimitReader(st, 1<<20))
				st.Write([]byte("reply"))
				st.Close()
			}()
		}
	}()

	if opens {
		for i := range 2 {
			st, err := s.Open(context.Background())
			if err != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				st.SetDeadline(time.Now().Add(2 * time.Second))
				// stream 2 stays within the initial window, stream 4 goes past it
				st.Write(make([]byte, (1+i*32)<<13))
				io.Copy(io.Discard, st)
				st.Close()
			}()
		}
	}
	peer.SetWriteDeadline(time.Now().Add(2 * time.Second))
	peer.Write(data) // fails once the session stops reading and closes: fine

	if st := s.Stats(); st.MemoryReserved > st.MemoryLimit {
		t.Fatalf("memory reserved %d over the budget %d", st.MemoryReserved, st.MemoryLimit)
	}
	if len(data)%2 == 1 {
		peer.Close()
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		s.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Log(goroutineDump())
		t.Fatalf("session did not end within 10 s of Close (input % x)", data)
	}
	peer.Close()
	if err := s.Err(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("session error after Close: %v", err)
	}
	waitAllWithin(t, &wg, 10*time.Second, "stream or accept goroutines still blocked after the session ended")
}

// frameInput turns FuzzSessionFrames input into wire bytes: 3 input bytes per frame.
func frameInput(data []byte) []byte {
	deltas := [...]uint32{0, 1, 1 << 10, initialWindow, 1 << 31, 0xFFFFFFFF, 0x7FFFFFFF, 16 << 20}
	var in []byte
	filler := bytes.Repeat([]byte{0xA5}, 255)
	for ; len(data) >= 3; data = data[3:] {
		typ := frameType(data[0] & 3)
		flags := uint16(data[0]>>2) & 0xF
		id := uint32(data[1] & 15)
		var length uint32
		switch typ {
		case typeData:
			length = uint32(data[2])
		case typeWindowUpdate:
			length = deltas[data[2]&7]
		case typePing:
			id, length = 0, uint32(data[2])
		case typeGoAway:
			id, length = 0, uint32(data[2]&3)
		}
		in = appendHeader(in, typ, flags, id, length)
		if typ == typeData {
			in = append(in, filler[:length]...)
		}
	}
	return in
}

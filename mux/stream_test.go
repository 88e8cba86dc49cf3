package mux

import (
	"io"
	"testing"
	"time"
)

// TestStalledReaderStallsOnlyItsStream: one stream's reader never reads and its window fills;
// another stream still moves 8 MiB intact, and the stalled one can resume afterwards.
func TestStalledReaderStallsOnlyItsStream(t *testing.T) {
	client, server := sessionPair(t, nil, nil)
	ctx := testCtx(t, 20*time.Second)
	stalled, _ := client.Open(ctx)
	stalledSrv, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the stalled stream's window: the writer blocks once 256 KiB are buffered.
	fillDone := make(chan int, 1)
	go func() {
		n, _ := stalledSrv.Write(make([]byte, 1<<20))
		fillDone <- n
	}()
	waitFor(t, func() bool {
		stalled.s.mu.Lock()
		defer stalled.s.mu.Unlock()
		return stalled.buf.len() == initialWindow
	})

	data := randomBytes(8<<20, 3)
	go func() {
		st, err := server.Open(ctx)
		if err != nil {
			return
		}
		st.Write(data)
		st.Close()
	}()
	other, err := client.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, sum, err := sumReader(other)
	if err != nil || n != int64(len(data)) || sum != sha(data) {
		t.Fatalf("other stream: %d bytes, %v, checksum ok %v", n, err, sum == sha(data))
	}
	other.Close()

	// The stalled reader resumes and gets all of its megabyte.
	got, err := io.ReadFull(stalled, make([]byte, 1<<20))
	if err != nil || got != 1<<20 {
		t.Fatalf("stalled stream resumed with %d bytes, %v", got, err)
	}
	if n := <-fillDone; n != 1<<20 {
		t.Fatalf("stalled writer wrote %d", n)
	}
	stalled.Close()
	stalledSrv.Close()
}

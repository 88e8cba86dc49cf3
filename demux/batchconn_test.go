package demux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// Concurrent writers' bytes arrive whole and each writer's in order, however the
// flusher batches them.
func TestBatchConnKeepsOrder(t *testing.T) {
	c, s := tcpPair(t)
	b := newBatchConn(c)
	const writers, per = 8, 500
	var mu sync.Mutex // stands in for the HTTP/2 client's write lock: one frame at a time
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				rec := []byte{byte(w), byte(i >> 8), byte(i), '\n'}
				mu.Lock()
				_, err := b.Write(rec)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := make(chan []byte)
	go func() {
		all, _ := io.ReadAll(io.LimitReader(s, writers*per*4))
		got <- all
	}()
	wg.Wait()
	all := <-got
	if len(all) != writers*per*4 {
		t.Fatalf("read %d bytes, want %d", len(all), writers*per*4)
	}
	next := make([]int, writers)
	for off := 0; off < len(all); off += 4 {
		rec := all[off : off+4]
		w, i := int(rec[0]), int(rec[1])<<8|int(rec[2])
		if i != next[w] {
			t.Fatalf("writer %d: record %d arrived when %d was due", w, i, next[w])
		}
		next[w]++
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// Close writes what Write accepted before closing, and later Writes fail.
func TestBatchConnCloseFlushes(t *testing.T) {
	c, s := tcpPair(t)
	b := newBatchConn(c)
	msg := bytes.Repeat([]byte("goaway"), 1000)
	if _, err := b.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(s)
	if !bytes.Equal(all, msg) {
		t.Fatalf("peer read %d bytes, want the %d written before Close", len(all), len(msg))
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// A peer that stops reading holds writers back once batchMax bytes are queued, and
// a write deadline ends the wait with the deadline error, which then sticks.
func TestBatchConnBackPressureAndDeadline(t *testing.T) {
	c, _ := tcpPair(t) // the server end never reads
	b := newBatchConn(c)
	defer b.Close()
	if err := b.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 16<<10)
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 10*time.Second {
		_, err = b.Write(chunk)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a peer that does not read: %v, want a deadline error", err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write after the failed one: %v, want the same error", err)
	}
	b.mu.Lock()
	queued := len(b.queued)
	b.mu.Unlock()
	if queued > batchMax+len(chunk) {
		t.Fatalf("%d bytes queued, more than batchMax plus one write", queued)
	}
}

// Without a deadline a Write to a peer that stops reading still waits (it never
// queues without bound), and Close ends the wait.
func TestBatchConnCloseEndsBlockedWrite(t *testing.T) {
	c, _ := tcpPair(t)
	b := newBatchConn(c)
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 16<<10)
		for {
			if _, err := b.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	// Wait until the writer has filled the queue up to its bound.
	waitFor(t, 10*time.Second, "writer held back", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queued) >= batchMax
	})
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("blocked Write returned no error after Close")
		}
	case <-time.After(batchCloseWait + 5*time.Second):
		t.Fatal("blocked Write did not end after Close")
	}
	<-closed
}

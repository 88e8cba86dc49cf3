package netem

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// server runs handle for each connection on a loopback listener until the
// test ends.
func server(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func echo(c net.Conn) { io.Copy(c, c) }

// sink reads to EOF, then answers with the SHA-256 of what it read.
func sink(c net.Conn) {
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return
	}
	c.Write(h.Sum(nil))
}

func relay(t *testing.T, target string, cfg Config) *Relay {
	t.Helper()
	r, err := Listen(target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func dial(t *testing.T, r *Relay) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// sendAndHash writes data, half-closes and reads the sink's checksum.
func sendAndHash(t *testing.T, c *net.TCPConn, data []byte) {
	t.Helper()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(got, want[:]) {
		t.Fatalf("checksum mismatch: relay changed the byte stream")
	}
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestBytesIntactBothDirections(t *testing.T) {
	r := relay(t, server(t, echo), Config{Delay: 2 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		c := dial(t, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := randomBytes(1<<20, uint64(i))
			go func() { c.Write(data); c.CloseWrite() }()
			got, err := io.ReadAll(c)
			if err != nil {
				errs <- err
				return
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				errs <- errors.New("echoed bytes differ")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := r.Accepted(); got != 8 {
		t.Errorf("Accepted() = %d, want 8", got)
	}
}

func TestRoundTripIsTwiceDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	c := dial(t, relay(t, server(t, echo), Config{Delay: delay}))
	buf := make([]byte, 1)
	for range 5 {
		start := time.Now()
		if _, err := c.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt < 2*delay {
			t.Fatalf("round trip %v, want >= %v", rtt, 2*delay)
		}
	}
}

func TestThroughputNotCappedByDelay(t *testing.T) {
	// A sleep per read would need 8 MiB / 32 KiB * 100 ms = 25.6 s.
	const delay = 100 * time.Millisecond
	data := randomBytes(8<<20, 1)
	c := dial(t, relay(t, server(t, sink), Config{Delay: delay}))
	start := time.Now()
	sendAndHash(t, c, data)
	if el := time.Since(start); el > 8*time.Second {
		t.Fatalf("8 MiB took %v through a %v relay: delay serializes reads", el, delay)
	}
}

func TestBandwidthCap(t *testing.T) {
	const bw = 2 << 20 // bytes/s
	data := randomBytes(1<<20, 2)
	c := dial(t, relay(t, server(t, sink), Config{Bandwidth: bw}))
	start := time.Now()
	sendAndHash(t, c, data)
	el := time.Since(start)
	if min := 450 * time.Millisecond; el < min { // 1 MiB at 2 MiB/s = 500 ms
		t.Fatalf("1 MiB at %d B/s took %v, want >= %v", bw, el, min)
	}
	if el > 10*time.Second {
		t.Fatalf("1 MiB at %d B/s took %v", bw, el)
	}
}

func TestBandwidthSharedByConnections(t *testing.T) {
	// Two connections through one 2 MiB/s link move 1 MiB together in
	// about 500 ms, not 250 ms.
	const bw = 2 << 20
	r := relay(t, server(t, sink), Config{Bandwidth: bw})
	c1, c2 := dial(t, r), dial(t, r)
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range []*net.TCPConn{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Write(randomBytes(512<<10, uint64(i)))
			c.CloseWrite()
			io.Copy(io.Discard, c)
		}()
	}
	wg.Wait()
	if el := time.Since(start); el < 450*time.Millisecond {
		t.Fatalf("2 x 512 KiB over a shared 2 MiB/s link took %v, want >= 450ms", el)
	}
}

func TestLossStallsConnection(t *testing.T) {
	const stall = 100 * time.Millisecond
	c := dial(t, relay(t, server(t, echo), Config{Loss: 0.9, Stall: stall, Seed: 7}))
	buf := make([]byte, 1)
	var worst time.Duration
	for range 4 {
		start := time.Now()
		c.Write([]byte{'x'})
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
	}
	if worst < stall {
		t.Fatalf("worst round trip %v with 90%% loss, want >= %v", worst, stall)
	}
}

func TestCloseDropsConnections(t *testing.T) {
	r, err := Listen(server(t, echo), Config{Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, r)
	c.Write([]byte("queued for an hour"))
	for r.Active() == 0 { // the relay dials the target asynchronously
		time.Sleep(time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes after Close, want an error", n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", r.Addr().String()); err == nil {
		t.Fatal("relay still accepts after Close")
	}
}

func TestUnreachableTargetClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := dial(t, relay(t, target, Config{}))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read succeeded through a relay whose target is down")
	}
}

func TestValidate(t *testing.T) {
	bad := []Config{
		{Delay: -1}, {Bandwidth: -1}, {Loss: -0.1}, {Loss: 1}, {Loss: math.NaN()},
		{Stall: -1}, {QueueBytes: -1},
	}
	for _, cfg := range bad {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
		if _, err := Listen("127.0.0.1:1", cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Listen(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if err := (Config{Delay: time.Millisecond, Bandwidth: 1, Loss: 0.5}).Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

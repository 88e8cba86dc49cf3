package mux

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestSchedulerRoundRobin checks the order the scheduler puts frames in: control frames first,
// then one Data frame of at most 64 KiB per stream per turn, so a small write waits behind at
// most one frame of each bulk stream, and FIN rides on the last Data frame.
func TestSchedulerRoundRobin(t *testing.T) {
	s, sc, b := schedulerCore(t)

	bulk1 := newStream(s, 1, true)
	bulk2 := newStream(s, 3, true)
	small := newStream(s, 5, true)
	bulk1.wbuf = make([]byte, 1<<20)
	bulk2.wbuf = make([]byte, 1<<20)
	small.wbuf = make([]byte, 64)
	small.sendFlags = flagFIN
	ack := newStream(s, 7, true)
	ack.sendFlags = flagACK
	ack.sendDelta = 1000

	s.mu.Lock()
	sc.queueDataLocked(bulk1)
	sc.queueDataLocked(bulk2)
	sc.queueDataLocked(small)
	sc.queueCtrlLocked(ack)
	sc.queueCtrlLocked(small) // the FIN must wait for small's data
	sc.fillLocked(b, false)
	s.mu.Unlock()

	type frame struct {
		typ   frameType
		id    uint32
		flags uint16
		n     uint32
	}
	var got []frame
	wire := b.out
	if b.writev {
		t.Fatal("net.Pipe must use the copying path")
	}
	for len(wire) >= headerSize {
		var h header
		copy(h[:], wire)
		f := frame{h.typ(), h.streamID(), h.flags(), h.length()}
		got = append(got, f)
		wire = wire[headerSize:]
		if f.typ == typeData {
			wire = wire[f.n:]
		}
	}
	want := []frame{
		{typeWindowUpdate, 7, flagACK, 1000},
		{typeData, 1, 0, maxDataFrame},
	}
	if len(got) < 3 || got[0] != want[0] || got[1] != want[1] || got[2].id != 3 {
		t.Fatalf("frames %v, want the ACK first, then bulk 1, then bulk 2", got)
	}
	found := false
	for i, f := range got {
		if f.id == 5 {
			found = true
			if f.typ != typeData || f.n != 64 || f.flags != flagFIN {
				t.Fatalf("small stream frame %+v, want Data of 64 bytes with FIN", f)
			}
			if i > 3 {
				t.Fatalf("small stream's frame is #%d: it waited behind more than one frame per bulk stream", i)
			}
		}
	}
	if !found {
		// The 128 KiB batch budget ended before small's turn; it must then be first in line.
		if sc.data.head != small {
			t.Fatalf("small stream neither sent nor next in line; frames %v", got)
		}
	}
}

// TestFairSmallStreamsDuringBulk: while one stream pushes bulk data as fast as it can, small
// request/response exchanges on another stream keep completing: all 100 finish before the bulk
// transfer does. Windows stay at their initial size here, so what is measured is the
// scheduler, not how much a grown window lets the kernel queue (see PROTOCOL.md).
func TestFairSmallStreamsDuringBulk(t *testing.T) {
	cfg := testConfig()
	cfg.MaxStreamWindow = initialWindow
	client, server := sessionPair(t, cfg, cfg)
	ctx := testCtx(t, 30*time.Second)
	go serveEcho(ctx, server)

	bulk, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bulkDone atomic.Bool
	const bulkSize = 256 << 20
	go io.Copy(io.Discard, bulk)
	go func() {
		buf := make([]byte, 1<<20)
		for sent := 0; sent < bulkSize; sent += len(buf) {
			if _, err := bulk.Write(buf); err != nil {
				break
			}
		}
		bulkDone.Store(true)
		bulk.CloseWrite()
	}()

	small, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg, in := make([]byte, 64), make([]byte, 64)
	var worst time.Duration
	for i := range 100 {
		msg[0] = byte(i)
		start := time.Now()
		if _, err := small.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(small, in); err != nil || in[0] != byte(i) {
			t.Fatalf("echo %d: %v, got %d", i, err, in[0])
		}
		worst = max(worst, time.Since(start))
	}
	if bulkDone.Load() {
		t.Error("the bulk transfer finished before 100 small echoes did: small streams were starved")
	}
	t.Logf("worst small echo while bulk ran: %v", worst)
	small.Close()
	bulk.Reset()
}

// TestSchedulerBatchBounds checks how much one vectored write carries: up to batchBytes, at
// most streamBatchFrames frames of each stream, the next stream in turn first in line for the
// next batch.
func TestSchedulerBatchBounds(t *testing.T) {
	cases := []struct {
		name       string
		streams    int
		wantFrames int // Data frames in the batch
	}{
		{"lone stream", 1, streamBatchFrames},         // 128 KiB
		{"three streams", 3, 3 * streamBatchFrames},   // each its share, 384 KiB in all
		{"32 streams", 32, batchBytes / maxDataFrame}, // one frame each, the last cut to fit batchBytes
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, sc, b := schedulerCore(t)
			b.writev = true // as on a TCP connection: payloads by reference

			var all []*Stream
			s.mu.Lock()
			for i := range tc.streams {
				st := newStream(s, uint32(2*i+1), true)
				st.wbuf = make([]byte, 1<<20)
				all = append(all, st)
				sc.queueDataLocked(st)
			}
			sc.fillLocked(b, false)
			s.mu.Unlock()

			if len(b.items) != tc.wantFrames {
				t.Fatalf("%d Data frames in the batch, want %d", len(b.items), tc.wantFrames)
			}
			if b.size > batchBytes {
				t.Fatalf("batch of %d bytes, want at most %d", b.size, batchBytes)
			}
			for _, st := range all {
				if st.inflight > streamBatchFrames {
					t.Fatalf("stream %d has %d frames in the batch, want at most %d", st.id, st.inflight, streamBatchFrames)
				}
			}
			if next := all[len(b.items)%tc.streams]; sc.data.head != next {
				t.Fatalf("stream %d first in line for the next batch, want %d", sc.data.head.id, next.id)
			}
		})
	}
}

// schedulerCore returns a core with no connection, its scheduler, and a batch that copies
// every payload (as on a net.Pipe) for fillLocked to fill.
func schedulerCore(t *testing.T) (*Session, *scheduler, *batch) {
	s := newCore(testConfig().withDefaults(), true)
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return s, &s.sched, newBatch(c1)
}

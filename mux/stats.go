package mux

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a session's counters (Session.Stats). Byte counts are Data payload
// bytes; frame counts include every frame type.
type Stats struct {
	Streams         int           // streams alive now
	StreamsOpened   uint64        // streams this side opened
	StreamsAccepted uint64        // peer-opened streams handed to AcceptStream
	StreamsRefused  uint64        // peer SYNs answered with RST (backlog, limits, GoAway, memory)
	FramesSent      uint64        // frames written
	FramesReceived  uint64        // frames read
	BytesSent       uint64        // Data payload bytes written
	BytesReceived   uint64        // Data payload bytes read
	ResetsReceived  uint64        // RST frames received
	PongsDropped    uint64        // Ping replies dropped because the peer pinged too fast
	WindowGrowths   uint64        // receive-window doublings by auto-tuning, counting those taken back
	RTT             time.Duration // smoothed round-trip time from Pings; 0 until measured
	MemoryReserved  int64         // bytes of receive window reserved from the budget
	MemoryLimit     int64         // the budget, MaxSessionMemory
}

type counters struct {
	streamsOpened   atomic.Uint64
	streamsAccepted atomic.Uint64
	streamsRefused  atomic.Uint64
	framesSent      atomic.Uint64
	framesReceived  atomic.Uint64
	bytesSent       atomic.Uint64
	bytesReceived   atomic.Uint64
	resetsReceived  atomic.Uint64
	pongsDropped    atomic.Uint64
	windowGrowths   atomic.Uint64
}

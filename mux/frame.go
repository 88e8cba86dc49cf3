package mux

import (
	"encoding/binary"
	"fmt"
)

// Wire constants of the yamux protocol, version 0 (hashicorp/yamux spec.md, "Framing").
const (
	protoVersion = 0

	// headerSize is the size in bytes of every frame header.
	headerSize = 12

	// initialWindow is the receive window every stream starts with in each direction, implied
	// without being sent (spec.md, "Flow Control"): 256 KiB.
	initialWindow = 256 * 1024
)

// frameType is the Type field of a frame header.
type frameType uint8

// Frame types (spec.md, "Type field").
const (
	typeData         frameType = 0 // payload of Length bytes follows
	typeWindowUpdate frameType = 1 // Length is a credit delta in bytes
	typePing         frameType = 2 // Length is an opaque value echoed by the reply
	typeGoAway       frameType = 3 // Length is a GoAway code
)

func (t frameType) String() string {
	switch t {
	case typeData:
		return "Data"
	case typeWindowUpdate:
		return "WindowUpdate"
	case typePing:
		return "Ping"
	case typeGoAway:
		return "GoAway"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Flag bits of a frame header (spec.md, "Flag field").
const (
	flagSYN uint16 = 1 << 0 // opens a stream; on Ping, a request
	flagACK uint16 = 1 << 1 // accepts a stream; on Ping, a reply
	flagFIN uint16 = 1 << 2 // half-closes the sender's direction
	flagRST uint16 = 1 << 3 // aborts the stream in both directions
)

// GoAway codes (spec.md, "GoAway").
const (
	GoAwayNormal        uint32 = 0 // no new streams; existing streams go on
	GoAwayProtocolError uint32 = 1 // the peer broke the protocol
	GoAwayInternalError uint32 = 2 // the sender failed internally
)

// header is one 12-byte frame header: version, type, flags, stream ID, length, big-endian.
type header [headerSize]byte

func (h *header) version() uint8   { return h[0] }
func (h *header) typ() frameType   { return frameType(h[1]) }
func (h *header) flags() uint16    { return binary.BigEndian.Uint16(h[2:4]) }
func (h *header) streamID() uint32 { return binary.BigEndian.Uint32(h[4:8]) }
func (h *header) length() uint32   { return binary.BigEndian.Uint32(h[8:12]) }
func (h *header) encode(t frameType, flags uint16, id, length uint32) {
	h[0] = protoVersion
	h[1] = byte(t)
	binary.BigEndian.PutUint16(h[2:4], flags)
	binary.BigEndian.PutUint32(h[4:8], id)
	binary.BigEndian.PutUint32(h[8:12], length)
}

func (h *header) String() string {
	return fmt.Sprintf("%v id=%d flags=%#x len=%d", h.typ(), h.streamID(), h.flags(), h.length())
}

// appendHeader appends one encoded header to b.
func appendHeader(b []byte, t frameType, flags uint16, id, length uint32) []byte {
	var h header
	h.encode(t, flags, id, length)
	return append(b, h[:]...)
}

// validate checks the fields that are wrong whatever the session state: the version, the type,
// and the stream ID that session frames and stream frames must carry. It returns a
// *ProtocolError or nil.
func (h *header) validate() error {
	if h.version() != protoVersion {
		return protocolErrorf("unsupported version %d", h.version())
	}
	switch h.typ() {
	case typeData, typeWindowUpdate:
		if h.streamID() == 0 {
			return protocolErrorf("%v frame on stream 0", h.typ())
		}
	case typePing, typeGoAway:
		if h.streamID() != 0 {
			return protocolErrorf("%v frame on stream %d", h.typ(), h.streamID())
		}
	default:
		return protocolErrorf("unknown frame type %d", uint8(h.typ()))
	}
	return nil
}

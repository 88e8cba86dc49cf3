package demux

import (
	"encoding/binary"
	"net"
)

// HTTP/2 frame types and settings this package watches for (RFC 9113 §6).
const (
	frameRSTStream = 0x3
	frameSettings  = 0x4
	frameGoAway    = 0x7

	flagAck = 0x1

	settingMaxConcurrentStreams = 0x3

	frameHeaderLen = 9
	settingLen     = 6 // one SETTINGS parameter: 16-bit identifier, 32-bit value
	maxKeptPayload = 8 // GOAWAY needs its first 8 bytes, RST_STREAM its 4
)

// frameEvents receives what a frameSniffer sees in the server-to-client direction.
// Calls come from the HTTP/2 client's read loop and must not block on it.
type frameEvents interface {
	// settings reports a non-ACK SETTINGS frame; has is false when it does not
	// mention MAX_CONCURRENT_STREAMS.
	settings(maxStreams uint32, has bool)
	goAway(lastStreamID, code uint32)
	rstStream(code uint32)
}

// frameSniffer wraps the TCP connection of an h2c upstream and parses frame headers as
// the HTTP/2 client reads them. net/http's ClientConn does not expose the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS (it assumes 100 until SETTINGS arrive) nor report
// GOAWAY until the connection closes, so watching the bytes is the only exact way to learn them. It never changes
// the data and costs a few comparisons per read.
type frameSniffer struct {
	net.Conn
	ev frameEvents

	hdr     [frameHeaderLen]byte
	hdrN    int
	typ     byte
	flags   byte
	left    uint32 // payload bytes of the current frame still to come
	payload []byte // kept prefix of the current payload (GOAWAY, RST_STREAM)
	broken  bool   // stop parsing after garbage; the client will fail the conn anyway

	// A SETTINGS payload is parsed as it streams by, one parameter at a time: it may
	// carry any number of them (RFC 9113 §6.5.1).
	param    [settingLen]byte
	paramN   int
	frameMax uint32 // the current SETTINGS frame's last MAX_CONCURRENT_STREAMS
	frameHas bool

	// settingsSeen delays the settings event to the next Read: the client reads again
	// only after it has processed every frame already read, so by then it applies the
	// peer's SETTINGS (header-list and frame-size limits too) to new requests.
	settingsSeen bool
	maxStreams   uint32
	hasMax       bool
	sawSettings  bool // a SETTINGS frame was parsed before
}

func (s *frameSniffer) Read(p []byte) (int, error) {
	if s.settingsSeen {
		s.settingsSeen = false
		s.ev.settings(s.maxStreams, s.hasMax)
	}
	n, err := s.Conn.Read(p)
	if n > 0 && !s.broken {
		s.scan(p[:n])
	}
	return n, err
}

func (s *frameSniffer) scan(b []byte) {
	for len(b) > 0 {
		if s.hdrN < frameHeaderLen {
			c := copy(s.hdr[s.hdrN:], b)
			s.hdrN += c
			b = b[c:]
			if s.hdrN < frameHeaderLen {
				return
			}
			s.left = uint32(s.hdr[0])<<16 | uint32(s.hdr[1])<<8 | uint32(s.hdr[2])
			s.typ, s.flags = s.hdr[3], s.hdr[4]
			s.payload = s.payload[:0]
			s.paramN, s.frameMax, s.frameHas = 0, 0, false
			if s.left > 1<<24 {
				s.broken = true
				return
			}
			if s.left == 0 {
				s.frameDone()
				continue
			}
		}
		c := uint32(len(b))
		if c > s.left {
			c = s.left
		}
		switch s.typ {
		case frameSettings:
			s.settingsPayload(b[:c])
		case frameGoAway, frameRSTStream:
			if room := maxKeptPayload - len(s.payload); room > 0 {
				s.payload = append(s.payload, b[:min(int(c), room)]...)
			}
		}
		b = b[c:]
		s.left -= c
		if s.left == 0 {
			s.frameDone()
		}
	}
}

// settingsPayload takes the next bytes of a SETTINGS payload.
func (s *frameSniffer) settingsPayload(b []byte) {
	for len(b) > 0 {
		k := copy(s.param[s.paramN:], b)
		s.paramN += k
		b = b[k:]
		if s.paramN == settingLen {
			s.paramN = 0
			if binary.BigEndian.Uint16(s.param[:]) == settingMaxConcurrentStreams {
				s.frameMax, s.frameHas = binary.BigEndian.Uint32(s.param[2:]), true
			}
		}
	}
}

func (s *frameSniffer) frameDone() {
	s.hdrN = 0
	p := s.payload
	switch s.typ {
	case frameSettings:
		if s.flags&flagAck != 0 {
			return
		}
		val, has := s.frameMax, s.frameHas
		// A later SETTINGS that omits MAX_CONCURRENT_STREAMS leaves it unchanged
		// (RFC 9113 §6.5); only the first one's omission means "no limit".
		if has || !s.sawSettings {
			s.settingsSeen, s.maxStreams, s.hasMax = true, val, has
		}
		s.sawSettings = true
	case frameGoAway:
		if len(p) >= 8 {
			s.ev.goAway(binary.BigEndian.Uint32(p)&0x7fffffff, binary.BigEndian.Uint32(p[4:]))
		}
	case frameRSTStream:
		if len(p) >= 4 {
			s.ev.rstStream(binary.BigEndian.Uint32(p))
		}
	}
}

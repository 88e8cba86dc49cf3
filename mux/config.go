package mux

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config tunes a session. The zero value of every other field than EnableKeepAlive means its
// documented default: nil behaves like DefaultConfig(), and &Config{} like DefaultConfig()
// with keepalive off. Start from DefaultConfig() to change a few fields. Names follow
// hashicorp/yamux where the meaning is the same.
type Config struct {
	// AcceptBacklog is how many opened-but-not-accepted incoming streams may wait for
	// AcceptStream; a SYN past it is refused with RST. It also bounds this side's streams that
	// are opened but not yet ACKed: Open waits (ctx-aware) beyond it, as the peer would refuse
	// them. Default 256, the yamux default; at most MaxAcceptBacklog.
	AcceptBacklog int

	// MaxIncomingStreams bounds the peer-opened streams alive at once; SYNs past it are refused
	// with RST. Default 1024.
	MaxIncomingStreams int

	// EnableKeepAlive turns on keepalive pings. Zero value false; DefaultConfig sets it true.
	// A nil *Config passed to Client or Server means DefaultConfig(), keepalive included.
	EnableKeepAlive bool

	// KeepAliveInterval is how long the session may receive nothing before it sends a ping.
	// Any received frame counts as a sign of life. Default 30 s.
	KeepAliveInterval time.Duration

	// KeepAliveTimeout is how long after a keepalive ping the session waits for any frame
	// before it ends with ErrKeepAliveTimeout. Default 10 s.
	KeepAliveTimeout time.Duration

	// WriteTimeout bounds each write to the connection; a peer that stops reading for longer
	// ends the session with ErrWriteTimeout. Default 10 s.
	WriteTimeout time.Duration

	// MaxStreamWindow is the largest receive window in bytes one stream's auto-tuning may reach.
	// Windows start at the protocol's 256 KiB and double while the reader keeps up with the
	// round-trip time. Minimum 256 KiB; default 16 MiB.
	MaxStreamWindow uint32

	// MaxSessionMemory bounds the bytes of receive window the session grants across all its
	// streams, and so the receive data it can buffer. Every stream reserves its initial 256 KiB
	// from it; growth past that is granted only while the budget lasts. Minimum 256 KiB;
	// default 256 MiB.
	MaxSessionMemory int

	// StreamOpenTimeout is how long an opened stream waits for the peer's ACK (or any frame
	// for it) before it is reset with a *StreamError; the session goes on. Default 75 s.
	StreamOpenTimeout time.Duration

	// StreamCloseTimeout is how long a stream closed with Close waits for the peer's FIN before
	// it is reset and forgotten. Default 5 min.
	StreamCloseTimeout time.Duration

	// Logger receives session-level events: protocol errors, keepalive failures. Nothing is
	// logged per frame. Default: slog.Default().
	Logger *slog.Logger

	// RTTObserver, if set, is told every round-trip time measured, for a histogram (see
	// RTTObserver). Nil costs nothing. Optional.
	RTTObserver RTTObserver
}

// MaxAcceptBacklog is the largest AcceptBacklog Validate accepts: the backlog is allocated up
// front, 8 bytes a slot.
const MaxAcceptBacklog = 1 << 16

// Defaults used for zero Config fields.
const (
	DefaultAcceptBacklog      = 256
	DefaultMaxIncomingStreams = 1024
	DefaultKeepAliveInterval  = 30 * time.Second
	DefaultKeepAliveTimeout   = 10 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultMaxStreamWindow    = 16 << 20
	DefaultMaxSessionMemory   = 256 << 20
	DefaultStreamOpenTimeout  = 75 * time.Second
	DefaultStreamCloseTimeout = 5 * time.Minute
)

// DefaultConfig returns a new Config holding every default, keepalive enabled.
func DefaultConfig() *Config {
	return &Config{
		AcceptBacklog:      DefaultAcceptBacklog,
		MaxIncomingStreams: DefaultMaxIncomingStreams,
		EnableKeepAlive:    true,
		KeepAliveInterval:  DefaultKeepAliveInterval,
		KeepAliveTimeout:   DefaultKeepAliveTimeout,
		WriteTimeout:       DefaultWriteTimeout,
		MaxStreamWindow:    DefaultMaxStreamWindow,
		MaxSessionMemory:   DefaultMaxSessionMemory,
		StreamOpenTimeout:  DefaultStreamOpenTimeout,
		StreamCloseTimeout: DefaultStreamCloseTimeout,
	}
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("mux: invalid config")

// Validate reports the first field that holds nonsense: a negative count or duration, a
// MaxStreamWindow or MaxSessionMemory below the protocol's 256 KiB initial window. Zero fields
// are valid (they mean the default). Errors wrap ErrInvalidConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.AcceptBacklog < 0 || c.AcceptBacklog > MaxAcceptBacklog:
		return bad("AcceptBacklog %d outside 0..%d", c.AcceptBacklog, MaxAcceptBacklog)
	case c.MaxIncomingStreams < 0:
		return bad("MaxIncomingStreams %d < 0", c.MaxIncomingStreams)
	case c.KeepAliveInterval < 0:
		return bad("KeepAliveInterval %v < 0", c.KeepAliveInterval)
	case c.KeepAliveTimeout < 0:
		return bad("KeepAliveTimeout %v < 0", c.KeepAliveTimeout)
	case c.WriteTimeout < 0:
		return bad("WriteTimeout %v < 0", c.WriteTimeout)
	case c.StreamOpenTimeout < 0:
		return bad("StreamOpenTimeout %v < 0", c.StreamOpenTimeout)
	case c.StreamCloseTimeout < 0:
		return bad("StreamCloseTimeout %v < 0", c.StreamCloseTimeout)
	case c.MaxStreamWindow != 0 && c.MaxStreamWindow < initialWindow:
		return bad("MaxStreamWindow %d below the protocol's initial window %d", c.MaxStreamWindow, initialWindow)
	case c.MaxSessionMemory < 0 || (c.MaxSessionMemory != 0 && c.MaxSessionMemory < initialWindow):
		return bad("MaxSessionMemory %d below one stream's initial window %d", c.MaxSessionMemory, initialWindow)
	}
	return nil
}

// withDefaults returns a copy of c with zero fields set to their defaults. c may be nil.
func (c *Config) withDefaults() Config {
	if c == nil {
		c = DefaultConfig()
	}
	out := *c
	d := DefaultConfig()
	orDefault(&out.AcceptBacklog, d.AcceptBacklog)
	orDefault(&out.MaxIncomingStreams, d.MaxIncomingStreams)
	orDefault(&out.KeepAliveInterval, d.KeepAliveInterval)
	orDefault(&out.KeepAliveTimeout, d.KeepAliveTimeout)
	orDefault(&out.WriteTimeout, d.WriteTimeout)
	orDefault(&out.MaxStreamWindow, d.MaxStreamWindow)
	orDefault(&out.MaxSessionMemory, d.MaxSessionMemory)
	orDefault(&out.StreamOpenTimeout, d.StreamOpenTimeout)
	orDefault(&out.StreamCloseTimeout, d.StreamCloseTimeout)
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

// orDefault sets *v to d when *v is the zero value.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

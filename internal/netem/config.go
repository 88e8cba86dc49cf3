package netem

import (
	"errors"
	"fmt"
	"time"
)

// Config describes the emulated link. The zero value is a plain relay with no
// delay, no bandwidth cap and no loss.
type Config struct {
	// Delay is the one-way delay added to each direction; the round trip
	// through the relay is about 2*Delay. Must be >= 0.
	Delay time.Duration

	// Bandwidth caps each direction of the relay, in bytes per second,
	// shared by all connections of the relay as one link would be
	// (so six connections do not get six times the bandwidth of one).
	// 0 means unlimited. Must be >= 0.
	Bandwidth int64

	// Loss is the probability, per 1448-byte segment, that a segment is
	// "lost". A lost segment, and everything queued behind it on the same
	// connection and direction, is held back by Stall, approximating a TCP
	// retransmission with head-of-line blocking. 0 disables it; must be in
	// [0, 1).
	Loss float64

	// Stall is how long a lost segment is held back. 0 means DefaultStall.
	// Must be >= 0.
	Stall time.Duration

	// Seed seeds the loss generator so runs are reproducible. Each
	// connection derives its own stream from it.
	Seed uint64

	// QueueBytes bounds the bytes queued per connection and direction;
	// when full, the relay stops reading from the sender, which gives TCP
	// back-pressure. 0 means DefaultQueueBytes. Must be >= 0. It should
	// be at least Bandwidth*Delay (or throughput*Delay for an unlimited
	// link) for the link to be kept busy.
	QueueBytes int
}

// DefaultStall approximates Linux's minimum retransmission timeout
// (TCP_RTO_MIN), the usual cost of a tail loss.
const DefaultStall = 200 * time.Millisecond

// DefaultQueueBytes is the per-connection, per-direction queue bound used
// when Config.QueueBytes is 0: enough for 400 MB/s at 10 ms one-way delay.
const DefaultQueueBytes = 4 << 20

// segmentSize is the payload of one TCP segment on a 1500-byte MTU path; loss
// is drawn per segment so a chunk's loss chance grows with its size.
const segmentSize = 1448

// ErrInvalidConfig is returned (wrapped, with the offending field) by
// Config.Validate and Listen for a config that makes no sense.
var ErrInvalidConfig = errors.New("netem: invalid config")

// Validate reports whether c is usable. The returned error wraps
// ErrInvalidConfig and names the offending field.
func (c Config) Validate() error {
	switch {
	case c.Delay < 0:
		return fmt.Errorf("%w: Delay %v < 0", ErrInvalidConfig, c.Delay)
	case c.Bandwidth < 0:
		return fmt.Errorf("%w: Bandwidth %d < 0", ErrInvalidConfig, c.Bandwidth)
	case !(c.Loss >= 0 && c.Loss < 1): // also rejects NaN
		return fmt.Errorf("%w: Loss %v not in [0, 1)", ErrInvalidConfig, c.Loss)
	case c.Stall < 0:
		return fmt.Errorf("%w: Stall %v < 0", ErrInvalidConfig, c.Stall)
	case c.QueueBytes < 0:
		return fmt.Errorf("%w: QueueBytes %d < 0", ErrInvalidConfig, c.QueueBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Stall == 0 {
		c.Stall = DefaultStall
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	return c
}

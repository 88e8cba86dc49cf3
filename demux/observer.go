package demux

import "time"

// QueueWaitObserver is told how long each request waited for an upstream stream, for
// a latency histogram (promstats.Histogram is one). Config.QueueWaitObserver.
type QueueWaitObserver interface {
	// ObserveQueueWait is called once per request that reached the upstream pool,
	// from the request's goroutine with no lock held, with the time it spent in the
	// FIFO queue: 0 when a stream was free at once. It must not block.
	ObserveQueueWait(d time.Duration)
}

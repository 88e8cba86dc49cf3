package pgpool

import (
	"context"
	"sync"
)

// cleanups tracks pgconn background cleanups (CleanupDone channels) that outlived the
// destructor, so that Close can wait for them without a goroutine per connection.
type cleanups struct {
	mu      sync.Mutex
	pending []<-chan struct{}
}

// add records done, dropping entries that have finished meanwhile.
func (c *cleanups) add(done <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.pending[:0]
	for _, d := range c.pending {
		select {
		case <-d:
		default:
			kept = append(kept, d)
		}
	}
	clear(c.pending[len(kept):])
	c.pending = append(kept, done)
}

// wait blocks until every recorded cleanup has finished or ctx ends (returning ctx.Err()).
func (c *cleanups) wait(ctx context.Context) error {
	c.mu.Lock()
	pending := append([]<-chan struct{}(nil), c.pending...)
	c.mu.Unlock()
	for _, d := range pending {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

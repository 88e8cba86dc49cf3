package pool

import "time"

// ExpiresAt exposes a resource's expiry (zero when it has none) to the tests.
func ExpiresAt[T any](r *Resource[T]) time.Time {
	if r.expiresAt == 0 {
		return time.Time{}
	}
	return r.createdAt.Add(time.Duration(r.expiresAt - r.created))
}

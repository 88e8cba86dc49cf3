package pool_test

import (
	"context"
	"errors"
	"testing"

	"github.com/muxpool/muxpool/pool"
)

func TestConfigInvalid(t *testing.T) {
	ctor := func(context.Context) (int, error) { return 0, nil }
	for _, c := range []struct {
		name string
		cfg  pool.Config[int]
	}{
		{"no constructor", pool.Config[int]{MaxSize: 1}},
		{"max 0", pool.Config[int]{Constructor: ctor}},
		{"min > max", pool.Config[int]{Constructor: ctor, MaxSize: 1, MinSize: 2}},
		{"min idle < 0", pool.Config[int]{Constructor: ctor, MaxSize: 1, MinIdle: -1}},
		{"negative lifetime", pool.Config[int]{Constructor: ctor, MaxSize: 1, MaxLifetime: -1}},
		{"negative jitter", pool.Config[int]{Constructor: ctor, MaxSize: 1, MaxLifetimeJitter: -1}},
		{"negative idle", pool.Config[int]{Constructor: ctor, MaxSize: 1, MaxIdleTime: -1}},
		{"negative period", pool.Config[int]{Constructor: ctor, MaxSize: 1, HealthCheckPeriod: -1}},
		{"negative timeout", pool.Config[int]{Constructor: ctor, MaxSize: 1, ConstructTimeout: -1}},
	} {
		p, err := pool.New(c.cfg)
		if !errors.Is(err, pool.ErrInvalidConfig) || p != nil {
			t.Errorf("%s: New = %v, %v; want ErrInvalidConfig", c.name, p, err)
		}
	}
}

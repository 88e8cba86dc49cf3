package mux

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	if err := (&Config{}).Validate(); err != nil {
		t.Fatalf("zero Config invalid: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.AcceptBacklog = -1 },
		func(c *Config) { c.AcceptBacklog = MaxAcceptBacklog + 1 },
		func(c *Config) { c.MaxIncomingStreams = -1 },
		func(c *Config) { c.KeepAliveInterval = -time.Second },
		func(c *Config) { c.KeepAliveTimeout = -time.Second },
		func(c *Config) { c.WriteTimeout = -time.Second },
		func(c *Config) { c.StreamOpenTimeout = -time.Second },
		func(c *Config) { c.StreamCloseTimeout = -time.Second },
		func(c *Config) { c.MaxStreamWindow = initialWindow - 1 },
		func(c *Config) { c.MaxSessionMemory = 1000 },
		func(c *Config) { c.MaxSessionMemory = -1 },
	}
	for i, mutate := range bad {
		c := DefaultConfig()
		mutate(c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: Validate() = %v, want ErrInvalidConfig", i, err)
		}
		if _, err := Client(nil, c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: Client with bad config = %v", i, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	got := (&Config{}).withDefaults()
	d := DefaultConfig()
	if got.AcceptBacklog != d.AcceptBacklog || got.MaxStreamWindow != d.MaxStreamWindow ||
		got.MaxSessionMemory != d.MaxSessionMemory || got.WriteTimeout != d.WriteTimeout ||
		got.Logger == nil {
		t.Fatalf("zero fields not defaulted: %+v", got)
	}
	if got.EnableKeepAlive {
		t.Fatal("a zero Config enabled keepalive")
	}
	if n := (*Config)(nil).withDefaults(); !n.EnableKeepAlive || n.Logger == nil {
		t.Fatal("nil Config should mean DefaultConfig with a logger")
	}
}

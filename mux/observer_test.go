package mux

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// rttSamples is an RTTObserver that keeps what it is told.
type rttSamples struct {
	mu  sync.Mutex
	got []time.Duration
}

func (r *rttSamples) ObserveRTT(d time.Duration) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
}

// The RTT a Ping returns has been observed by the time Ping returns, on either side.
func TestRTTObserverSeesPing(t *testing.T) {
	var cobs, sobs rttSamples
	ccfg, scfg := testConfig(), testConfig()
	ccfg.RTTObserver, scfg.RTTObserver = &cobs, &sobs
	client, server := sessionPair(t, ccfg, scfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		rtt, err := client.Ping(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cobs.mu.Lock()
		seen := slices.Contains(cobs.got, rtt)
		cobs.mu.Unlock()
		if !seen {
			t.Fatalf("Ping's RTT %v not observed", rtt)
		}
	}
	if _, err := server.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	sobs.mu.Lock()
	n := len(sobs.got)
	sobs.mu.Unlock()
	if n == 0 {
		t.Fatal("the server's Ping was not observed")
	}
}

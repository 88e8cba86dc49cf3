package promstats_test

import (
	"strings"
	"testing"
	"time"

	"github.com/muxpool/muxpool/promstats"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Bounds are inclusive (le), negative durations count as zero, and the sum is in seconds.
func TestHistogramBuckets(t *testing.T) {
	h := promstats.NewHistogram([]float64{0.001, 0.01})
	for _, d := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, time.Second, -5} {
		h.ObserveRTT(d)
	}
	// A Mux collector with no sessions sends the histogram alone.
	err := testutil.CollectAndCompare(promstats.NewMux("h", h), strings.NewReader(`
# HELP muxpool_mux_rtt_seconds Every round-trip time measured by the set's sessions (mux.Config.RTTObserver).
# TYPE muxpool_mux_rtt_seconds histogram
muxpool_mux_rtt_seconds_bucket{mux="h",le="0.001"} 3
muxpool_mux_rtt_seconds_bucket{mux="h",le="0.01"} 4
muxpool_mux_rtt_seconds_bucket{mux="h",le="+Inf"} 5
muxpool_mux_rtt_seconds_sum{mux="h"} 1.003
muxpool_mux_rtt_seconds_count{mux="h"} 5
`), "muxpool_mux_rtt_seconds")
	if err != nil {
		t.Error(err)
	}
}

func TestHistogramRejectsUnorderedBuckets(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewHistogram accepted buckets out of order")
		}
	}()
	promstats.NewHistogram([]float64{0.1, 0.1})
}

package main

import "time"

// sampleReport is a finished comparison with the numbers of README's run
// (60 clients, 600 requests, rtt 40ms, think 10ms), for chart tests that
// should not wait for a measurement.
func sampleReport() report {
	p := params{RTT: 40 * time.Millisecond, Clients: 60, Requests: 600, Size: 1024, Think: 10 * time.Millisecond,
		Streams: 100, Stall: 200 * time.Millisecond, Seed: 1, Runs: 3}
	row := func(g, s, leg string, muxd bool, rps, p50, p99 float64) result {
		return result{Group: g, Strategy: s, Multiplexed: muxd, DelayedLeg: leg, Runs: 3, Requests: 1800,
			ReqPerSec: rps, P50ms: p50, P99ms: p99, TotalMs: 600 / rps * 1000, ModelMs: ms(p.model(muxd))}
	}
	rs := []result{
		row("http", "h1x6", "client->backend", false, 107.4, 542.4, 678.2),
		row("http", "h2x1", "client->backend", true, 1081.8, 54.5, 68.0),
		row("demux", "h1pool6", "proxy->upstream", false, 112.8, 530.3, 578.3),
		row("demux", "h2cx1", "proxy->upstream", true, 1054.2, 56.1, 77.8),
		row("mux", "tcpx6", "client->server", false, 110.2, 526.8, 642.8),
		row("mux", "muxx1", "client->server", true, 1085.9, 53.8, 116.8),
	}
	setRatios(rs)
	return report{Params: p, Results: rs, Machine: machine(), chart: defaultChartSize}
}

// sampleSweep is an rtt sweep over 0, 10 and 40 ms whose every strategy
// measured 90 % of the model's requests/s, for chart tests.
func sampleSweep() sweepReport {
	base := sampleReport()
	sw := sweepSpec{Param: "rtt", Values: []float64{0, 10, 40}}
	sr := sweepReport{Param: sw.Param, Params: base.Params, Machine: base.Machine, spec: sw, chart: defaultChartSize}
	for _, v := range sw.Values {
		p := sw.apply(base.Params, v)
		var rs []result
		for _, x := range base.Results {
			x.ModelMs = ms(p.model(x.Multiplexed))
			x.ReqPerSec = 0.9 * float64(p.Requests) / (x.ModelMs / 1000)
			rs = append(rs, x)
		}
		setRatios(rs)
		sr.Points = append(sr.Points, sweepPoint{Value: v, Params: p, Results: rs})
	}
	return sr
}

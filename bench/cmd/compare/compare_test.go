package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBrief runs the command with tiny parameters and returns stdout and the
// decoded compare.json.
func runBrief(t *testing.T, extra ...string) (string, report) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"-requests", "48", "-clients", "12", "-rtt", "10ms", "-think", "0",
		"-size", "3000", "-q", "-out", dir}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "compare.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"compare.csv", "compare.svg"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	return stdout.String(), rep
}

func TestRunReportsEveryStrategy(t *testing.T) {
	out, rep := runBrief(t)
	all := allStrategies()
	if len(rep.Results) != len(all) {
		t.Fatalf("%d results, want %d (one per strategy)", len(rep.Results), len(all))
	}
	const rtt = 10 * time.Millisecond
	for i, s := range all {
		r := rep.Results[i]
		if r.Group != s.group || r.Strategy != s.name {
			t.Fatalf("result %d is %s/%s, want %s", i, r.Group, r.Strategy, s.id())
		}
		if !strings.Contains(out, s.name) {
			t.Errorf("table lacks %s:\n%s", s.id(), out)
		}
		if r.Errors != 0 || r.Requests != 48 {
			t.Errorf("%s: %d ok, %d errors (%s), want 48 ok", s.id(), r.Requests, r.Errors, r.FirstError)
		}
		wantConns := int64(6)
		if s.multiplexed {
			wantConns = 1
		}
		if r.Conns != wantConns {
			t.Errorf("%s used %d TCP connections across the relay, want %d", s.id(), r.Conns, wantConns)
		}
		if !(r.ReqPerSec > 0 && r.P50ms > 0 && r.P50ms <= r.P99ms && r.P99ms <= r.TotalMs) {
			t.Errorf("%s: insane numbers %+v", s.id(), r)
		}
		// Physics, not speed: every request waits at least one round
		// trip, and at most `concurrency` are in flight at once.
		if r.P50ms < ms(rtt) || r.TotalMs < r.ModelMs {
			t.Errorf("%s: p50 %.1fms total %.1fms, below the rtt %v / model %.1fms", s.id(), r.P50ms, r.TotalMs, rtt, r.ModelMs)
		}
		if s.multiplexed && !(r.Ratio > 0) {
			t.Errorf("%s: no ratio against the six-connection baseline", s.id())
		}
	}
	if !strings.Contains(out, "delayed leg") || !strings.Contains(out, "rtt 10ms") {
		t.Errorf("table does not say where the delay is:\n%s", out)
	}
}

func TestRunFilterAndLoss(t *testing.T) {
	_, rep := runBrief(t, "-strategies", "http/h2x1,http", "-loss", "0.01", "-stall", "20ms")
	if len(rep.Results) != 2 || rep.Results[0].Strategy != "h1x6" || rep.Results[1].Strategy != "h2x1" {
		t.Fatalf("filter http/h2x1,http gave %+v", rep.Results)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-clients", "0"}, {"-requests", "-1"}, {"-rtt", "-1ms"}, {"-loss", "1"},
		{"-strategies", "nope"}, {"-bogus"}, {"extra-arg"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want errUsage", args, err)
		}
	}
}

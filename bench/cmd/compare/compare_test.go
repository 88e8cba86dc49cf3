package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muxpool/muxpool/internal/netem"
)

// runBrief runs the command with tiny parameters and returns stdout, the
// decoded compare.json and the rows of compare.csv (header first).
func runBrief(t *testing.T, extra ...string) (string, report, [][]string) {
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
	for _, pic := range []string{"compare.svg", "compare.png"} {
		if fi, err := os.Stat(filepath.Join(dir, pic)); err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty: %v", pic, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "compare.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 1+len(rep.Results) {
		t.Fatalf("compare.csv: %d rows for %d results: %v", len(rows), len(rep.Results), err)
	}
	return stdout.String(), rep, rows
}

func TestRunReportsEveryStrategy(t *testing.T) {
	out, rep, _ := runBrief(t)
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
	_, rep, _ := runBrief(t, "-strategies", "http/h2x1,http", "-loss", "0.01", "-stall", "20ms")
	if len(rep.Results) != 2 || rep.Results[0].Strategy != "h1x6" || rep.Results[1].Strategy != "h2x1" {
		t.Fatalf("filter http/h2x1,http gave %+v", rep.Results)
	}
	if rep.Params.Stall != 20*time.Millisecond {
		t.Errorf("stall_ns = %v, want the -stall given (20ms)", rep.Params.Stall)
	}
}

// TestRunRecordsConditions: JSON and CSV both say which loss, bandwidth and
// stall a run had, the stall being the default the relay used when -stall is
// not given.
func TestRunRecordsConditions(t *testing.T) {
	_, rep, rows := runBrief(t, "-strategies", "mux/muxx1", "-loss", "0.02", "-bandwidth", "10000000")
	if p := rep.Params; p.Loss != 0.02 || p.Bandwidth != 10000000 || p.Stall != netem.DefaultStall {
		t.Errorf("JSON params loss %v bandwidth %d stall %v, want 0.02, 10000000, %v",
			p.Loss, p.Bandwidth, p.Stall, netem.DefaultStall)
	}
	want := map[string]string{"loss": "0.02", "bandwidth": "10000000", "stall_ns": "200000000"}
	for i, col := range rows[0] {
		if v, ok := want[col]; ok {
			if rows[1][i] != v {
				t.Errorf("CSV %s = %q, want %q", col, rows[1][i], v)
			}
			delete(want, col)
		}
	}
	if len(want) > 0 {
		t.Errorf("CSV header %q lacks %v", rows[0], want)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-clients", "0"}, {"-requests", "-1"}, {"-rtt", "-1ms"}, {"-loss", "1"},
		{"-strategies", "nope"}, {"-bogus"}, {"extra-arg"},
		{"-sweep", "size=1,2"}, {"-sweep", "rtt"}, {"-sweep", "rtt=5,x"}, {"-sweep", "rtt=-5"}, {"-sweep", "clients=0,6"},
		{"-sweep", "clients=1.5"}, {"-chart-size", "100x100"}, {"-chart-size", "960"}, {"-chart-size", "960x540x2"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want errUsage", args, err)
		}
	}
}

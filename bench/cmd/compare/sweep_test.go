package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSweepSpecParses(t *testing.T) {
	for in, want := range map[string]sweepSpec{
		"rtt=0,5,10,20,40,80":   {Param: "rtt", Values: []float64{0, 5, 10, 20, 40, 80}},
		"rtt=500us,1.5, 2ms":    {Param: "rtt", Values: []float64{0.5, 1.5, 2}},
		"clients=6,12,24,48,96": {Param: "clients", Values: []float64{6, 12, 24, 48, 96}},
	} {
		var s sweepSpec
		if err := s.Set(in); err != nil {
			t.Errorf("Set(%q): %v", in, err)
			continue
		}
		if s.String() != want.String() {
			t.Errorf("Set(%q) = %v, want %v", in, s.String(), want.String())
		}
	}
	s := sweepSpec{Param: "rtt"}
	if p := s.apply(params{}, 2.5); p.RTT != 2500*time.Microsecond || s.format(2.5) != "2.5ms" {
		t.Errorf("rtt 2.5 applies as %v, prints as %q", p.RTT, s.format(2.5))
	}
}

// TestRunSweep runs a tiny rtt sweep of one group through the command: one
// measured point per value and strategy in the table, the CSV and the JSON,
// the pictures written, and progress naming each value.
func TestRunSweep(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	var stderr syncBuffer
	args := []string{"-sweep", "rtt=0,10", "-strategies", "mux", "-requests", "12", "-clients", "6", "-think", "0",
		"-size", "100", "-out", dir}
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	for _, w := range []string{"rtt=0s (1/2) [1/2] mux/tcpx6", "rtt=10ms (2/2) [2/2] mux/muxx1"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("progress lacks %q:\n%s", w, stderr.String())
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "sweep-rtt.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sr sweepReport
	if err := json.Unmarshal(raw, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Param != "rtt" || len(sr.Points) != 2 {
		t.Fatalf("sweep-rtt.json: param %q with %d points, want rtt with 2", sr.Param, len(sr.Points))
	}
	for i, pt := range sr.Points {
		if want := []float64{0, 10}[i]; pt.Value != want || pt.Params.RTT != time.Duration(want)*time.Millisecond {
			t.Errorf("point %d: value %v rtt %v, want %v ms", i, pt.Value, pt.Params.RTT, want)
		}
		if len(pt.Results) != 2 {
			t.Fatalf("point %d: %d results, want mux/tcpx6 and mux/muxx1", i, len(pt.Results))
		}
		for _, r := range pt.Results {
			if r.Requests != 12 || r.Errors != 0 || !(r.ReqPerSec > 0) || r.ModelMs < 0 {
				t.Errorf("point %d %s: %+v", i, r.Strategy, r)
			}
		}
	}
	f, err := os.Open(filepath.Join(dir, "sweep-rtt.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 5 || rows[3][4] != "10.000" {
		t.Errorf("sweep-rtt.csv: %q, %v; want a header and 4 rows, the later two at rtt_ms 10.000", rows, err)
	}
	for _, pic := range []string{"sweep-rtt.svg", "sweep-rtt.png"} {
		if fi, err := os.Stat(filepath.Join(dir, pic)); err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty: %v", pic, err)
		}
	}
	if out := stdout.String(); !strings.Contains(out, "six-conn req/s") || strings.Count(out, " mux ") != 2 {
		t.Errorf("table lacks a row per rtt:\n%s", out)
	}
}

package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// modelReqPerSec is the model's requests/s for a result: its requests per
// run over the predicted total (0 when the model predicts no time at all).
func modelReqPerSec(p params, x result) float64 {
	if x.ModelMs <= 0 {
		return 0
	}
	return float64(p.Requests) / (x.ModelMs / 1000)
}

// modelCell is the model's requests/s for the table: "-" where it predicts
// no time at all (no rtt and no think time).
func modelCell(p params, x result) string {
	if m := modelReqPerSec(p, x); m > 0 {
		return fmt.Sprintf("%.1f", m)
	}
	return "-"
}

// writeTable prints, per value and comparison group, measured and predicted
// requests/s for both sides and their ratio.
func (sr sweepReport) writeTable(w io.Writer) error {
	p := sr.Params
	fmt.Fprintf(w, "sweep %s over %s: %d requests per strategy x %d run(s), %d-byte responses, backend think %v, max %d streams",
		sr.Param, sr.valueList(), p.Requests, p.Runs, p.Size, p.Think, p.Streams)
	if sr.Param != "clients" {
		fmt.Fprintf(w, ", %d clients", p.Clients)
	}
	if sr.Param != "rtt" {
		fmt.Fprintf(w, ", rtt %v", p.RTT)
	}
	fmt.Fprintf(w, "\nmachine: %d CPUs, %s, %s/%s, %s\n\n", sr.Machine.CPUs, sr.Machine.CPU, sr.Machine.GOOS, sr.Machine.GOARCH, sr.Machine.Go)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tgroup\tdelayed leg\tsix-conn req/s\tmodel\tmultiplexed req/s\tmodel\tvs six-conn\terrors\t\n", sr.Param)
	for _, pt := range sr.Points {
		rep := report{Params: pt.Params, Results: pt.Results}
		for _, pr := range rep.pairs() {
			six, mux := valueOf(pr.six), valueOf(pr.mux)
			leg := six.DelayedLeg
			if leg == "" {
				leg = mux.DelayedLeg
			}
			ratio := "-"
			if mux.Ratio > 0 {
				ratio = fmt.Sprintf("%.2fx", mux.Ratio)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\t%.1f\t%s\t%s\t%d\t\n", sr.spec.format(pt.Value), pr.group, leg,
				six.ReqPerSec, modelCell(pt.Params, six), mux.ReqPerSec, modelCell(pt.Params, mux), ratio, six.Errors+mux.Errors)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nmodel: requests / (ceil(requests/k) x (rtt + think)), k = min(clients, 6) for six connections, min(clients, streams) multiplexed")
	return nil
}

// valueList is the swept values as the flag would take them.
func (sr sweepReport) valueList() string {
	vs := make([]string, len(sr.Points))
	for i, pt := range sr.Points {
		vs[i] = sr.spec.format(pt.Value)
	}
	return strings.Join(vs, ",")
}

// baseName is the files' path in dir without extension: sweep-rtt, sweep-clients.
func (sr sweepReport) baseName(dir string) string {
	return filepath.Join(dir, "sweep-"+sr.Param)
}

// writeFiles writes the sweep as CSV (compare.csv's columns, a row per value
// and strategy), JSON, SVG and PNG into dir, creating it if needed, and
// returns the files' names.
func (sr sweepReport) writeFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := sr.baseName(dir)
	if err := writeFile(base+".csv", func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(csvHeader)
		for _, pt := range sr.Points {
			writeCSVRows(cw, pt.Params, pt.Results)
		}
		cw.Flush()
		return cw.Error()
	}); err != nil {
		return nil, err
	}
	if err := writeFile(base+".json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sr)
	}); err != nil {
		return nil, err
	}
	pics, err := saveFigure(base, sr.chart, sweepFigure(sr))
	return append([]string{base + ".csv", base + ".json"}, pics...), err
}

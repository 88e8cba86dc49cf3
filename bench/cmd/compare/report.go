package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one strategy's summary over all runs. Durations are in
// milliseconds so the JSON and CSV are easy to plot.
type result struct {
	Group       string  `json:"group"`
	Strategy    string  `json:"strategy"`
	Multiplexed bool    `json:"multiplexed"`
	DelayedLeg  string  `json:"delayed_leg"`
	Runs        int     `json:"runs"`
	Requests    int     `json:"requests"` // successful, all runs
	Errors      int     `json:"errors"`
	Conns       int64   `json:"tcp_conns"` // accepted by the relay on the delayed leg (max over runs)
	ReqPerSec   float64 `json:"req_per_sec"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	TotalMs     float64 `json:"total_ms"` // median over runs
	ModelMs     float64 `json:"model_ms"` // ceil(N/concurrency) x (rtt + think), or N x size / bandwidth if longer
	Ratio       float64 `json:"ratio_vs_six_conn,omitempty"`
	FirstError  string  `json:"first_error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize pools one strategy's samples: latencies over all runs, total time
// as the median run.
func summarize(p params, s strategy, samples []sample, conns int64) result {
	r := result{Group: s.group, Strategy: s.name, Multiplexed: s.multiplexed, DelayedLeg: s.leg,
		Runs: len(samples), Conns: conns, ModelMs: ms(p.model(s.multiplexed))}
	var lat, totals []time.Duration
	for _, smp := range samples {
		lat = append(lat, smp.latencies...)
		totals = append(totals, smp.total)
		r.Errors += smp.errors
		if smp.firstErr != nil && r.FirstError == "" {
			r.FirstError = smp.firstErr.Error()
		}
	}
	slices.Sort(lat)
	slices.Sort(totals)
	r.Requests = len(lat)
	r.P50ms = ms(percentile(lat, 0.50))
	r.P99ms = ms(percentile(lat, 0.99))
	if len(totals) > 0 {
		med := totals[len(totals)/2]
		r.TotalMs = ms(med)
		if med > 0 {
			r.ReqPerSec = float64(r.Requests) / float64(len(samples)) / med.Seconds()
		}
	}
	return r
}

// setRatios gives each multiplexed result its requests/s divided by the
// six-connection result of the same group.
func setRatios(rs []result) {
	for i := range rs {
		if !rs[i].Multiplexed {
			continue
		}
		for _, b := range rs {
			if b.Group == rs[i].Group && !b.Multiplexed && b.ReqPerSec > 0 {
				rs[i].Ratio = rs[i].ReqPerSec / b.ReqPerSec
			}
		}
	}
}

// report is everything one invocation measured.
type report struct {
	Params  params      `json:"params"`
	Machine machineInfo `json:"machine"`
	Results []result    `json:"results"`

	chart chartSize // size of compare.svg and compare.png
}

// machineInfo describes where the numbers came from.
type machineInfo struct {
	CPUs    int    `json:"cpus"`
	CPU     string `json:"cpu"`
	GOOS    string `json:"goos"`
	GOARCH  string `json:"goarch"`
	Go      string `json:"go"`
	Started string `json:"started"`
}

func machine() machineInfo {
	return machineInfo{CPUs: runtime.NumCPU(), CPU: cpuModel(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		Go: runtime.Version(), Started: time.Now().UTC().Format(time.RFC3339)}
}

// cpuModel reads the first "model name" from /proc/cpuinfo ("unknown"
// elsewhere).
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func (r report) describeLink() string {
	p := r.Params
	s := fmt.Sprintf("rtt %v (%v each way)", p.RTT, p.RTT/2)
	if p.Bandwidth > 0 {
		s += fmt.Sprintf(", bandwidth %d B/s per direction shared by the leg's connections", p.Bandwidth)
	}
	if p.Loss > 0 {
		s += fmt.Sprintf(", loss %.3g%% per segment stalling its connection %v", 100*p.Loss, p.Stall)
	}
	return s
}

// writeTable prints the parameters, the table and the model.
func (r report) writeTable(w io.Writer) error {
	p := r.Params
	fmt.Fprintf(w, "compare: %d requests per strategy x %d run(s), %d concurrent clients, %d-byte responses, backend think %v, max %d streams\n",
		p.Requests, p.Runs, p.Clients, p.Size, p.Think, p.Streams)
	fmt.Fprintf(w, "link: userspace delay relay (internal/netem) on the leg in column \"delayed leg\": %s\n", r.describeLink())
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s/%s, %s\n\n", r.Machine.CPUs, r.Machine.CPU, r.Machine.GOOS, r.Machine.GOARCH, r.Machine.Go)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "group\tstrategy\tdelayed leg\ttcp conns\treq/s\tp50\tp99\ttotal\tmodel\tvs six-conn\terrors\t")
	for _, x := range r.Results {
		ratio := "baseline"
		if x.Multiplexed {
			ratio = "-"
			if x.Ratio > 0 {
				ratio = fmt.Sprintf("%.2fx", x.Ratio)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%.1fms\t%.1fms\t%.0fms\t%.0fms\t%s\t%d\t\n",
			x.Group, x.Strategy, x.DelayedLeg, x.Conns, x.ReqPerSec, x.P50ms, x.P99ms, x.TotalMs, x.ModelMs, ratio, x.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nmodel: ceil(requests/concurrency) x (rtt + think); concurrency = min(clients, 6) = %d for six connections, min(clients, streams) = %d multiplexed\n",
		p.concurrency(false), p.concurrency(true))
	if p.Bandwidth > 0 {
		fmt.Fprintln(w, "       or requests x size / bandwidth when that is longer")
	}
	fmt.Fprintln(w, "vs six-conn: requests/s of the multiplexed strategy divided by the six-connection one in the same group")
	for _, x := range r.Results {
		if x.FirstError != "" {
			fmt.Fprintf(w, "%s/%s: %d errors, first: %s\n", x.Group, x.Strategy, x.Errors, x.FirstError)
		}
	}
	return nil
}

func (r report) files(dir string) []string {
	return []string{filepath.Join(dir, "compare.csv"), filepath.Join(dir, "compare.json"),
		filepath.Join(dir, "compare.svg"), filepath.Join(dir, "compare.png")}
}

// writeFiles writes compare.csv, compare.json, and the chart as compare.svg
// and compare.png into dir, creating it if needed.
func (r report) writeFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f := r.files(dir)
	if err := writeFile(f[0], r.writeCSV); err != nil {
		return err
	}
	if err := writeFile(f[1], func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}); err != nil {
		return err
	}
	_, err := saveFigure(filepath.Join(dir, "compare"), r.chart, compareFigure(r))
	return err
}

func writeFile(name string, fill func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	writeCSVRows(cw, r.Params, r.Results)
	cw.Flush()
	return cw.Error()
}

// csvHeader names the columns of compare.csv and a sweep's CSV. loss,
// bandwidth and stall_ns are there as in the JSON params, so lossy or capped
// runs can be told from clean ones.
var csvHeader = []string{"group", "strategy", "multiplexed", "delayed_leg", "rtt_ms", "clients", "size", "think_ms",
	"loss", "bandwidth", "stall_ns", "runs", "requests", "errors", "tcp_conns", "req_per_sec", "p50_ms", "p99_ms",
	"total_ms", "model_ms", "ratio_vs_six_conn"}

// writeCSVRows writes one row per result, measured with p.
func writeCSVRows(cw *csv.Writer, p params, results []result) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, x := range results {
		ratio := "" // baselines and strategies without one: empty, not "0.000"
		if x.Ratio != 0 {
			ratio = f(x.Ratio)
		}
		cw.Write([]string{x.Group, x.Strategy, strconv.FormatBool(x.Multiplexed), x.DelayedLeg, f(ms(p.RTT)),
			strconv.Itoa(p.Clients), strconv.Itoa(p.Size), f(ms(p.Think)), strconv.FormatFloat(p.Loss, 'g', -1, 64),
			strconv.FormatInt(p.Bandwidth, 10), strconv.FormatInt(int64(p.Stall), 10), strconv.Itoa(x.Runs),
			strconv.Itoa(x.Requests), strconv.Itoa(x.Errors), strconv.FormatInt(x.Conns, 10), f(x.ReqPerSec), f(x.P50ms), f(x.P99ms), f(x.TotalMs),
			f(x.ModelMs), ratio})
	}
}

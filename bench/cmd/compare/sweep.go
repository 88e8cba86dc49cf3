package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// sweepSpec is the -sweep flag: one workload parameter and the values it
// takes, e.g. rtt=0,5,10,20,40,80 (milliseconds) or clients=6,12,24,48,96.
type sweepSpec struct {
	Param  string    // "rtt" or "clients"; "" = no sweep
	Values []float64 // rtt in milliseconds, or client counts
}

// sweepParams are the parameters -sweep can vary.
var sweepParams = []string{"rtt", "clients"}

func (s *sweepSpec) String() string {
	if s.Param == "" {
		return ""
	}
	vs := make([]string, len(s.Values))
	for i, v := range s.Values {
		vs[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return s.Param + "=" + strings.Join(vs, ",")
}

// Set parses PARAM=V1,V2,...; it implements flag.Value. rtt values are
// milliseconds, or Go durations such as 500us; clients values are counts.
func (s *sweepSpec) Set(v string) error {
	param, list, ok := strings.Cut(v, "=")
	if !ok || (param != "rtt" && param != "clients") {
		return fmt.Errorf("want PARAM=V1,V2,... with PARAM one of %s", strings.Join(sweepParams, ", "))
	}
	var vals []float64
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		x, err := strconv.ParseFloat(f, 64)
		if param == "rtt" && err != nil {
			var d time.Duration
			if d, err = time.ParseDuration(f); err == nil {
				x = ms(d)
			}
		}
		switch {
		case err != nil || math.IsNaN(x) || math.IsInf(x, 0):
			return fmt.Errorf("%s: bad value %q", param, f)
		case x < 0 || (param == "clients" && (x < 1 || x != math.Trunc(x))):
			return fmt.Errorf("%s: %q out of range", param, f)
		}
		vals = append(vals, x)
	}
	s.Param, s.Values = param, vals
	return nil
}

// apply returns p with the swept parameter set to v.
func (s sweepSpec) apply(p params, v float64) params {
	switch s.Param {
	case "rtt":
		p.RTT = time.Duration(v * float64(time.Millisecond))
	case "clients":
		p.Clients = int(v)
	}
	return p
}

// format prints v as the flag would take it back (10ms, 60).
func (s sweepSpec) format(v float64) string {
	if s.Param == "rtt" {
		return time.Duration(v * float64(time.Millisecond)).String()
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// sweepPoint is one value of the swept parameter and what every strategy
// measured there.
type sweepPoint struct {
	Value   float64  `json:"value"` // rtt in milliseconds, or clients
	Params  params   `json:"params"`
	Results []result `json:"results"`
}

// sweepReport is everything one -sweep invocation measured.
type sweepReport struct {
	Param   string       `json:"param"`
	Params  params       `json:"params"` // the workload apart from Param
	Machine machineInfo  `json:"machine"`
	Points  []sweepPoint `json:"points"`

	spec  sweepSpec
	chart chartSize // size of the sweep's SVG and PNG
}

// runSweep measures the selected strategies at every value of the sweep,
// one value after another, with progress naming the value.
func runSweep(ctx context.Context, sw sweepSpec, base params, sel []strategy, prog *progress) (sweepReport, error) {
	sr := sweepReport{Param: sw.Param, Params: base, Machine: machine(), spec: sw}
	for _, v := range sw.Values {
		if err := sw.apply(base, v).validate(); err != nil {
			return sr, err
		}
	}
	for i, v := range sw.Values {
		p := sw.apply(base, v)
		prefix := fmt.Sprintf("%s=%s (%d/%d) ", sw.Param, sw.format(v), i+1, len(sw.Values))
		results, err := measure(ctx, p, sel, prog, prefix)
		if err != nil {
			return sr, fmt.Errorf("%s=%s: %w", sw.Param, sw.format(v), err)
		}
		sr.Points = append(sr.Points, sweepPoint{Value: v, Params: p, Results: results})
	}
	return sr, nil
}

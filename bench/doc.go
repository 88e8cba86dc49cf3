// Package bench holds muxpool's benchmarks against its anchors, run side by
// side so benchstat can compare them: mux against raw TCP, hashicorp/yamux and
// xtaci/smux; pool against puddle and database/sql; pgpool against pgxpool;
// demux against a direct client and against HAProxy doing the same HTTP/1.1-to-h2c
// translation (skipped without haproxy); and six HTTP/1.1 connections against one
// HTTP/2 connection (Go's net/http, which bundles x/net/http2) at several
// round-trip times (through internal/netem).
//
// Benchmarks are named key=value style, e.g.
// BenchmarkH1vsH2/rtt=10ms/proto=h2x1. See README.md in this directory for
// how to run, compare and read them, and bench/cmd/compare for the
// command-line comparison that is the module's main job.
//
// The package has no non-test code beyond this comment.
package bench

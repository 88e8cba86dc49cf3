// Package netem is a userspace network emulator for tests and benchmarks: a TCP
// relay on 127.0.0.1 that forwards every accepted connection to a target
// address and adds one-way delay, an optional bandwidth cap and optional
// loss-like stalls to each direction.
//
// This machine's kernel has no netem qdisc, so latency has to be injected in
// userspace. The relay terminates TCP on both sides: the endpoints see
// loopback round trips for TCP's own ACKs and congestion control, while every
// application byte (HTTP/2 WINDOW_UPDATEs and mux window updates included) is
// delayed. That is what matters for request/response round trips and for
// flow-control windows; it is not a model of TCP congestion behaviour.
//
// Per direction the relay keeps order and the exact byte stream. Chunks read
// from one side are time-stamped and queued, and a separate writer releases
// each chunk when it is due, so a long delay does not cap throughput at one
// read per delay.
package netem

package main

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// startDemoBackend serves a small h2c app on a free loopback port: every request gets
// a line naming its method, path and protocol as the app saw them, and the Via the
// proxy added. It returns the app's address and a function that stops it.
func startDemoBackend() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from the demo backend: %s %s over %s, via %q\n", r.Method, r.URL.Path, r.Proto, r.Header.Get("Via"))
		}),
		Protocols:         new(http.Protocols),
		ReadHeaderTimeout: 10 * time.Second,
	}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

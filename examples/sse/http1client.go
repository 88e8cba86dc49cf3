package main

import "net/http"

// http1Client returns a client that speaks only HTTP/1.1 (an EventSource in an old
// browser, say).
func http1Client() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	return &http.Client{Transport: tr}
}

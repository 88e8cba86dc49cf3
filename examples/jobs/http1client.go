package main

import "net/http"

// http1Client returns a client that speaks only HTTP/1.1, like a legacy client in front
// of the proxy.
func http1Client() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: 8}
	tr.Protocols.SetHTTP1(true)
	return &http.Client{Transport: tr}
}

package demux_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/muxpool/muxpool/demux"
)

// A proxy in front of an h2c backend: HTTP/1.1 clients, each request one HTTP/2
// stream upstream, served safely with NewServer.
func Example() {
	// The backend: any Go server that speaks HTTP/2 with prior knowledge.
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s reached the backend over %s via %s\n", r.Method, r.URL.Path, r.Proto, r.Header.Get("Via"))
	}), Protocols: new(http.Protocols)}
	backend.Protocols.SetUnencryptedHTTP2(true)
	go backend.Serve(bl)
	defer backend.Close()

	p, err := demux.New(demux.Config{Upstream: "h2c://" + bl.Addr().String() + "/api"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := demux.NewServer(ln.Addr().String(), p)
	go srv.Serve(ln)
	defer srv.Close()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/users")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, ": ", string(body))
	st := p.Stats()
	fmt.Println("upstream conns:", st.Conns, "targets:", len(st.Targets), "requests:", st.Requests)
	// Output:
	// 200 OK: GET /api/users reached the backend over HTTP/2.0 via 1.1 muxpool
	// upstream conns: 1 targets: 1 requests: 1
}

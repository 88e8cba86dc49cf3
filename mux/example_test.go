package mux_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/muxpool/muxpool/mux"
)

// Two sessions over one TCP connection: the client opens a stream, writes, half-closes and
// reads the server's echo.
func Example() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		conn, _ := ln.Accept()
		server, _ := mux.Server(conn, nil)
		defer server.Close()
		st, err := server.AcceptStream(context.Background())
		if err != nil {
			return
		}
		io.Copy(st, st) // echo until the client's FIN
		st.Close()
		server.Wait() // returns once the client has closed too
	}()

	conn, _ := net.Dial("tcp", ln.Addr().String())
	client, _ := mux.Client(conn, nil)
	st, _ := client.Open(context.Background())
	st.Write([]byte("hello over one connection"))
	st.CloseWrite()
	reply, _ := io.ReadAll(st)
	fmt.Println(string(reply))
	st.Close()
	client.Close()
	client.Wait()
	// Output: hello over one connection
}

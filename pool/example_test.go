package pool_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/muxpool/muxpool/pool"
)

// A pool of at most two TCP connections to a local echo server. A caller acquires a
// connection, uses it, and releases it when healthy or destroys it when broken; with both
// connections out, a third caller would wait its turn (FIFO) and be handed the first one
// released.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }() // echo until the pool closes c
		}
	}()

	p, err := pool.New(pool.Config[net.Conn]{
		Constructor: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		},
		Destructor:       func(c net.Conn) { c.Close() },
		MaxSize:          2,
		MaxLifetime:      time.Hour,
		ConstructTimeout: 5 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.Acquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn := res.Value()
	if _, err := conn.Write([]byte("hello")); err != nil {
		res.Destroy() // broken: do not give it back to the pool
		fmt.Println(err)
		return
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil {
		res.Destroy()
		fmt.Println(err)
		return
	}
	res.Release() // healthy: back to the pool (or straight to the next waiter)
	fmt.Println(string(buf))

	s := p.Stat()
	fmt.Println("constructed:", s.ConstructCount, "max:", s.Max)
	// Output:
	// hello
	// constructed: 1 max: 2
}

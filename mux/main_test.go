package mux

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	return client, server
}

// testConfig has short timeouts so failure paths finish quickly.
func testConfig() *Config {
	c := DefaultConfig()
	c.KeepAliveInterval = 5 * time.Second
	c.WriteTimeout = 5 * time.Second
	c.StreamOpenTimeout = 5 * time.Second
	c.StreamCloseTimeout = 5 * time.Second
	return c
}

// sessionPair starts a client and a server session over loopback TCP and closes both when the
// test ends.
func sessionPair(t testing.TB, ccfg, scfg *Config) (*Session, *Session) {
	t.Helper()
	cc, sc := tcpPair(t)
	return startPair(t, cc, sc, ccfg, scfg)
}

// startPair runs a client session on cc and a server session on sc (nil configs mean
// testConfig) and closes both when the test ends.
func startPair(t testing.TB, cc, sc io.ReadWriteCloser, ccfg, scfg *Config) (*Session, *Session) {
	t.Helper()
	if ccfg == nil {
		ccfg = testConfig()
	}
	if scfg == nil {
		scfg = testConfig()
	}
	client, err := Client(cc, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	server, err := Server(sc, scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
		client.Wait()
		server.Wait()
	})
	return client, server
}

// serveEcho accepts every stream the session gets and echoes it until the peer's FIN.
func serveEcho(ctx context.Context, s *Session) {
	for {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			return
		}
		go func() {
			io.Copy(st, st)
			st.Close()
		}()
	}
}

// testCtx returns a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sumReader reads r to EOF and returns the byte count and SHA-256.
func sumReader(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum, err
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b: b} }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

package h2cstack

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStack: HTTP/1.1 requests through the proxy reach the backend as HTTP/2 over one
// connection, and Close ends both servers.
func TestStack(t *testing.T) {
	s, err := Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), "127.0.0.1:0", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	c := &http.Client{Transport: tr}
	for range 3 {
		resp, err := c.Get(s.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != "HTTP/1.1" || string(b) != "HTTP/2.0" {
			t.Fatalf("client saw %s, backend saw %q; want HTTP/1.1 and HTTP/2.0", resp.Proto, b)
		}
	}
	if d := s.Proxy.Stats().Dials; d != 1 {
		t.Errorf("%d upstream dials, want 1", d)
	}
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

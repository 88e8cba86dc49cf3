package demux

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SSE events reach the HTTP/1.1 client as they are emitted. The backend
// waits for the client to see event i before emitting event i+1, so any buffering in
// the proxy deadlocks the test (bounded by the client timeout).
func TestSSEFlushesEachEvent(t *testing.T) {
	seen := make(chan int)
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range 3 {
			io.WriteString(w, "data: "+strings.Repeat("x", i+1)+"\n\n")
			rc.Flush()
			select {
			case <-seen:
			case <-time.After(5 * time.Second):
				return
			}
		}
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	resp, err := f.client.Get(f.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := "data: " + strings.Repeat("x", i+1) + "\n"; line != want {
			t.Fatalf("event %d = %q, want %q", i, line, want)
		}
		br.ReadString('\n')
		seen <- i
	}
}

// A long poll is held past QueueTimeout; only queueing is timed.
func TestLongPollNotTimedOut(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1200 * time.Millisecond)
		io.WriteString(w, "event")
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, QueueTimeout: 500 * time.Millisecond})
	if code, body := f.get(t, "/poll"); code != 200 || body != "event" {
		t.Errorf("long poll: %d %q", code, body)
	}
}

// A chunked upload streams: the backend sees the first chunk while the
// client still withholds the second.
func TestChunkedUploadStreams(t *testing.T) {
	got := make(chan string, 2)
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			t.Errorf("backend read: %v", err)
			return
		}
		got <- string(buf)
		rest, _ := io.ReadAll(r.Body)
		got <- string(rest)
		io.WriteString(w, "done")
	})
	// Request buffering off (RequestBodyBuffer < 0): each chunk is passed on at once.
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, RequestBodyBuffer: -1})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", f.url+"/up", pr)
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := f.client.Do(req)
		if err != nil {
			t.Error(err)
			close(respc)
			return
		}
		respc <- resp
	}()
	pw.Write([]byte("first"))
	select {
	case s := <-got:
		if s != "first" {
			t.Errorf("first chunk %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk did not stream to the backend")
	}
	pw.Write([]byte("second"))
	pw.Close()
	if s := <-got; s != "second" {
		t.Errorf("rest %q", s)
	}
	if resp := <-respc; resp != nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "done" {
			t.Errorf("upload response %d %q", resp.StatusCode, b)
		}
	}
}

// Response trailers, announced and not, reach the HTTP/1.1 client in a
// chunked response.
func TestTrailersToHTTP1(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	resp, err := f.client.Get(f.url + "/t")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "body" {
		t.Errorf("body %q", b)
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("TransferEncoding %v, want chunked", resp.TransferEncoding)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "late" {
		t.Errorf("trailers %v", resp.Trailer)
	}
}

// Large bodies cross intact in both directions (SHA-256 compared).
func TestLargeBodiesIntact(t *testing.T) {
	const size = 8 << 20
	down := make([]byte, size)
	rand.Read(down)
	downSum := sha256.Sum256(down)
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				t.Errorf("backend upload: %v after %d", err, n)
			}
			io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
			return
		}
		w.Write(down)
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})

	up := make([]byte, size)
	rand.Read(up)
	upSum := sha256.Sum256(up)
	resp, err := f.client.Post(f.url+"/up", "application/octet-stream", io.NopCloser(strings.NewReader(string(up))))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != hex.EncodeToString(upSum[:]) {
		t.Errorf("upload checksum mismatch: backend %q", b)
	}

	resp, err = f.client.Get(f.url + "/down")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || string(h.Sum(nil)) != string(downSum[:]) {
		t.Errorf("download: %d bytes, err %v, checksum match %v", n, err, string(h.Sum(nil)) == string(downSum[:]))
	}
}

// A client that cancels makes the backend handler's context end promptly,
// both while waiting for headers and during a streamed body.
func TestClientCancelResetsUpstream(t *testing.T) {
	for _, phase := range []string{"headers", "body"} {
		t.Run("phase="+phase, func(t *testing.T) {
			started, ended := make(chan struct{}), make(chan struct{})
			be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
				if phase == "body" {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, "data: hi\n\n")
					http.NewResponseController(w).Flush()
				}
				close(started)
				select {
				case <-r.Context().Done():
					close(ended)
				case <-time.After(10 * time.Second):
				}
			})
			f := newFront(t, Config{Upstream: "h2c://" + be.addr})
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/c", nil)
			errc := make(chan error, 1)
			go func() {
				resp, err := f.client.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				errc <- err
			}()
			<-started
			cancel()
			select {
			case <-ended:
			case <-time.After(3 * time.Second):
				t.Fatal("backend context not cancelled after client cancel")
			}
			<-errc
			waitFor(t, 5*time.Second, "stream released", func() bool { return f.p.Stats().StreamsInUse == 0 })
		})
	}
}

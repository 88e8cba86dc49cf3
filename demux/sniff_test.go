package demux

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

type sniffRecorder struct {
	events  []string
	goAways int
	rsts    int
}

func (r *sniffRecorder) settings(v uint32, has bool) {
	if has {
		r.events = append(r.events, "max="+string(rune('0'+v)))
	} else {
		r.events = append(r.events, "none")
	}
}
func (r *sniffRecorder) goAway(last, code uint32) { r.goAways++ }
func (r *sniffRecorder) rstStream(code uint32)    { r.rsts++ }

// The frame sniffer reports SETTINGS (deferred to the next read), GOAWAY and
// RST_STREAM however the byte stream is split, and a later SETTINGS without
// MAX_CONCURRENT_STREAMS does not reset the limit (RFC 9113 §6.5).
func TestFrameSniffer(t *testing.T) {
	var wire bytes.Buffer
	fr := http2.NewFramer(&wire, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 3})
	fr.WriteWindowUpdate(0, 1000)
	fr.WriteSettingsAck()
	fr.WriteData(1, false, bytes.Repeat([]byte("d"), 300))
	fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 2})
	fr.WriteGoAway(1, http2.ErrCodeNo, []byte("bye"))
	for _, step := range []int{1, 7, 9, 64, wire.Len()} {
		rec := &sniffRecorder{}
		s := &frameSniffer{Conn: emptyConn{}, ev: rec}
		b := wire.Bytes()
		for len(b) > 0 {
			n := min(step, len(b))
			s.Read(nil) // delivers a deferred SETTINGS event, as the client's next read would
			s.scan(b[:n])
			b = b[n:]
		}
		s.Read(nil)
		// Frames read together coalesce into the latest value; never "none".
		if got := strings.Join(rec.events, " "); got != "max=3 max=2" && got != "max=2" {
			t.Errorf("step %d: settings events %q, want \"max=3 max=2\"", step, got)
		}
		if rec.goAways != 1 || rec.rsts != 1 {
			t.Errorf("step %d: goaways %d rsts %d", step, rec.goAways, rec.rsts)
		}
	}
}

// emptyConn reads nothing; the test feeds bytes with scan.
type emptyConn struct{ net.Conn }

func (emptyConn) Read([]byte) (int, error) { return 0, nil }

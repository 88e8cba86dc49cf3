package demux

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthLoop runs Config.HealthCheckPath's active checks for HTTP/1.1 targets
// (HTTP/2 ones are checked with PING on each connection instead): every
// PingInterval, a GET of the path on a connection of its own to each target that is
// not gone; a 2xx or 3xx answer within PingTimeout ends the target's failure run and
// any ejection, any other outcome is a failure (three in a row eject it, see target).
func (u *upstream) healthLoop() {
	defer u.wg.Done()
	t := time.NewTicker(u.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-u.ctx.Done():
			return
		case <-t.C:
		}
		u.mu.Lock()
		var addrs []*target
		for _, tg := range u.targets {
			if !tg.gone {
				addrs = append(addrs, tg)
			}
		}
		u.mu.Unlock()
		for _, tg := range addrs {
			err := u.check(tg.addr)
			u.mu.Lock()
			if err != nil {
				u.failedLocked(tg, err)
			} else {
				u.succeededLocked(tg)
				tg.ejectedTil = time.Time{} // the check is the authority: back at once
			}
			u.mu.Unlock()
		}
	}
}

// check GETs HealthCheckPath from addr on a connection of its own.
func (u *upstream) check(addr string) error {
	ctx, cancel := context.WithTimeout(u.ctx, u.cfg.PingTimeout)
	defer cancel()
	tr := &http.Transport{DialContext: u.dialer.DialContext, DisableKeepAlives: true, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+u.cfg.HealthCheckPath, nil)
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return &DialError{Addr: addr, Err: err}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return &DialError{Addr: addr, Err: fmt.Errorf("health check %s: status %d", u.cfg.HealthCheckPath, resp.StatusCode)}
	}
	return nil
}

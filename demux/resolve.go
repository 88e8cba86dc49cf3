package demux

import (
	"context"
	"net"
	"slices"
	"time"
)

// Resolver looks up a host name's addresses; *net.Resolver (net.DefaultResolver)
// implements it. Config.Resolver lets tests and service discovery supply their own.
type Resolver interface {
	// LookupHost returns the IP addresses (as strings) of host.
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// source is one Config.Upstreams entry: a host (name or IP literal) and port.
type source struct {
	host, port string
	literal    bool
	addrs      []string // host:port targets it last resolved to
}

// startResolving creates the targets of IP-literal hosts at once; host names are
// resolved by a goroutine at once and then every Config.ResolveInterval (unless
// negative), following DNS changes: new addresses become targets, vanished ones are
// marked gone and leave once idle. A failed lookup keeps the previous addresses.
func (u *upstream) startResolving(hosts []string) {
	names := false
	for _, hp := range hosts {
		host, port, _ := net.SplitHostPort(hp)
		src := source{host: host, port: port, literal: net.ParseIP(host) != nil}
		if src.literal {
			src.addrs = []string{hp}
			u.targets = append(u.targets, &target{addr: hp})
		}
		names = names || !src.literal
		u.sources = append(u.sources, src)
	}
	if !names {
		u.resolved = true
		return
	}
	u.wg.Add(1)
	go u.resolveLoop()
}

func (u *upstream) resolveLoop() {
	defer u.wg.Done()
	for {
		u.resolveOnce()
		if u.cfg.ResolveInterval < 0 {
			return
		}
		t := time.NewTimer(u.cfg.ResolveInterval)
		select {
		case <-u.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// resolveOnce looks every host name up and updates the targets.
func (u *upstream) resolveOnce() {
	var lastErr error
	lookedUp := make([][]string, len(u.sources))
	for i, src := range u.sources {
		if src.literal {
			continue
		}
		ctx, cancel := context.WithTimeout(u.ctx, u.cfg.DialTimeout)
		ips, err := u.cfg.Resolver.LookupHost(ctx, src.host)
		cancel()
		if err != nil || len(ips) == 0 {
			lastErr = err
			u.log.Warn("demux: upstream lookup failed", "host", src.host, "err", err)
			continue
		}
		addrs := make([]string, 0, len(ips))
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, src.port))
		}
		slices.Sort(addrs)
		lookedUp[i] = addrs
	}

	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	for i := range u.sources {
		if lookedUp[i] != nil {
			u.sources[i].addrs = lookedUp[i]
		}
	}
	want := map[string]bool{}
	for _, src := range u.sources {
		for _, a := range src.addrs {
			want[a] = true
		}
	}
	for _, t := range u.targets {
		if t.gone = !want[t.addr]; t.gone {
			for _, uc := range t.conns {
				uc.draining = true
			}
		}
		delete(want, t.addr)
	}
	for _, src := range u.sources { // in order, for a stable target order
		for _, a := range src.addrs {
			if want[a] {
				delete(want, a)
				u.targets = append(u.targets, &target{addr: a})
				u.log.Debug("demux: upstream target added", "target", a)
			}
		}
	}
	u.resolved = true
	if len(u.targets) == 0 && lastErr != nil {
		u.failWaitersLocked(&DialError{Addr: u.name, Err: lastErr})
	}
	u.dispatchLocked()
	u.unlockAndWake()
}

package pgpool

// StatOf exposes the pgxpool-shaped snapshot to the tests.
func StatOf(p *Pool) *Stat { return p.pgxStat() }

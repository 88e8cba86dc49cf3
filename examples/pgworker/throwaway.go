// Repository scaffolding, not part of the example. Leave this file out when you copy
// pgworker into your own module: it imports muxpool's internal/pgtest, which Go lets
// only code inside the muxpool module import. Without it the program is the same but
// needs -database-url or DATABASE_URL.

package main

import "github.com/muxpool/muxpool/internal/pgtest"

// init lets a run in this repository with no database URL start a throwaway
// PostgreSQL cluster with internal/pgtest (initdb and pg_ctl in a temporary
// directory); the cluster's Stop removes it again.
func init() {
	throwaway = func() (string, func() error, error) {
		c, err := pgtest.Start()
		if err != nil {
			return "", nil, err
		}
		return c.ConnString(), c.Stop, nil
	}
}

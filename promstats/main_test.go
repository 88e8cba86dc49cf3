package promstats_test

import (
	"testing"

	"github.com/muxpool/muxpool/internal/pgtest"
	"go.uber.org/goleak"
)

// TestMain runs the tests (the PgPool ones on one throwaway PostgreSQL cluster, stopped
// afterwards), then checks for leaked goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }

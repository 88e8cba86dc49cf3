package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain is the package's only TestMain: benchmarks from every file must
// leave no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

package promstats_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The core packages do not pull Prometheus into a user's build: only promstats imports
// client_golang.
func TestCorePackagesDoNotImportPrometheus(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "./mux", "./pool", "./pool/pgpool", "./demux")
	cmd.Dir = ".." // the module root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed only %q", deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "prometheus") {
			t.Errorf("a core package depends on %s", d)
		}
	}
}

package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
)

// debianBinGlob is where Debian installs each major version's server binaries; tests replace it.
var debianBinGlob = "/usr/lib/postgresql/*/bin"

// findBinDir returns the directory holding both initdb and pg_ctl: the one on PATH first, then
// the newest /usr/lib/postgresql/<major>/bin (Debian's layout, which is not on PATH by default).
// It returns "" when neither has them.
func findBinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		// Resolve symlinks (Debian links /usr/bin tools to a wrapper or to the versioned dir):
		// pg_ctl locates the postgres binary next to itself, so the real directory matters.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); hasTools(dir) {
			return dir
		}
	}
	dirs, _ := filepath.Glob(debianBinGlob)
	// Newest major first; the directory names are numbers ("15", "16", or "9.6" on old systems).
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, dir := range dirs {
		if hasTools(dir) {
			return dir
		}
	}
	return ""
}

func hasTools(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

func majorOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

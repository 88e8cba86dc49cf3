package main

import (
	"bytes"
	"context"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/muxpool/muxpool/internal/pgtest"
)

// TestOnlyThrowawayGoNeedsTheRepository: of the program's files, only
// throwaway.go imports muxpool's internal packages, so the others can be
// copied into any module as they are; throwaway.go does, so the repository's
// go run keeps starting a throwaway server.
func TestOnlyThrowawayGoNeedsTheRepository(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	scaffolding := false
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(path, "github.com/muxpool/muxpool/internal/") {
				continue
			}
			if name != "throwaway.go" {
				t.Errorf("%s imports %s: it could not be copied out of the repository", name, path)
			}
			scaffolding = true
		}
	}
	if !scaffolding {
		t.Error("throwaway.go does not import internal/pgtest: no throwaway server without a URL")
	}
}

// withThrowaway replaces the throwaway hook for one test.
func withThrowaway(t *testing.T, f func() (string, func() error, error)) {
	saved := throwaway
	throwaway = f
	t.Cleanup(func() { throwaway = saved })
}

// TestRunWithoutURL: with no URL and no throwaway.go a run fails at once,
// naming what it needs; with the hook it runs on the server the hook started
// and stops it afterwards.
func TestRunWithoutURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	withThrowaway(t, nil)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-jobs", "10"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "no -database-url or DATABASE_URL") {
		t.Fatalf("run without URL or hook = %v, want an error asking for a URL", err)
	}

	url := pgtest.Shared(t).ConnString()
	stopped := 0
	withThrowaway(t, func() (string, func() error, error) {
		return url, func() error { stopped++; return nil }, nil
	})
	out.Reset()
	if err := run(testCtx(t), []string{"-jobs", "20", "-workers", "4", "-max-conns", "2", "-work", "0"}, &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "started a throwaway PostgreSQL cluster") ||
		!strings.Contains(out.String(), "table: 20/20 done, 0 not exactly once") || stopped != 1 {
		t.Errorf("run with the hook: stopped %d times, output:\n%s", stopped, out.String())
	}
}

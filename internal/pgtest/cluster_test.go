package pgtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(Main(m)) }

func connect(t *testing.T, c *Cluster) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestSharedServesQueriesWithTestSettings(t *testing.T) {
	c := Shared(t)
	if Shared(t) != c {
		t.Fatal("second Shared call returned a different cluster")
	}
	conn := connect(t, c)
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	if c.External() {
		t.Skip("DATABASE_URL server: settings are not ours")
	}
	want := map[string]string{"fsync": "off", "max_connections": "100", "listen_addresses": "127.0.0.1"}
	for name, v := range want {
		var got string
		if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	// The unix socket lives in the cluster directory.
	if _, err := os.Stat(filepath.Join(c.Dir(), ".s.PGSQL."+strconv.Itoa(c.port))); err != nil {
		t.Errorf("unix socket: %v", err)
	}
}

func TestServerRunsAsPostgresWhenRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not running as root")
	}
	c := Shared(t)
	if c.External() {
		t.Skip("DATABASE_URL server")
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(c.PID()) + "/status")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	cred, err := credentialForServer()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Uid:") {
			if f := strings.Fields(line); len(f) < 2 || f[1] != strconv.Itoa(int(cred.Uid)) {
				t.Fatalf("postmaster %s, want uid %d", line, cred.Uid)
			}
			return
		}
	}
	t.Fatal("no Uid line in /proc status")
}

func TestStopLeavesNoProcessOrDirectory(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL set: no throwaway cluster")
	}
	c, err := Start()
	RequireOrSkip(t, err)
	// Hold two backends open so that Stop has children to take down.
	connect(t, c)
	connect(t, c)
	procs := c.serverProcs()
	if len(procs) < 3 {
		t.Fatalf("server processes %v: want the postmaster and at least two backends", procs)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range procs {
		if alive(pid) {
			t.Errorf("pid %d alive after Stop", pid)
		}
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("cluster dir after Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartReapsClusterOfDeadOwner(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL set: no throwaway cluster")
	}
	c, err := Start()
	RequireOrSkip(t, err)
	t.Cleanup(func() { c.Stop() })
	// Pretend the cluster belongs to a test binary that died: a finished child's PID.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Dir(), ownerFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	reapStale(c.binDir, c.runAs)
	if alive(c.PID()) {
		t.Error("postmaster of the orphaned cluster still alive")
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("orphaned cluster dir: %v", err)
	}
	// The shared cluster's owner (this process) is alive, so it must have survived.
	if s := Shared(t); !s.External() && !alive(s.PID()) {
		t.Error("reapStale stopped a live owner's cluster")
	}
}

func TestDatabaseURLIsUsedVerbatim(t *testing.T) {
	const url = "postgres://u@example.invalid:1/db"
	t.Setenv("DATABASE_URL", url)
	c, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if !c.External() || c.ConnString() != url || c.PID() != 0 {
		t.Fatalf("got external=%v conn=%q pid=%d", c.External(), c.ConnString(), c.PID())
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestNoBinaries(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("PATH", t.TempDir())
	old := debianBinGlob
	debianBinGlob = filepath.Join(t.TempDir(), "*", "bin")
	t.Cleanup(func() { debianBinGlob = old })

	_, err := Start()
	if !errors.Is(err, ErrNoPostgres) {
		t.Fatalf("Start without binaries: %v, want ErrNoPostgres", err)
	}
	t.Setenv("CI", "")
	if got := outcome(err); got != "skip" {
		t.Errorf("outside CI: %s, want skip", got)
	}
	t.Setenv("CI", "true")
	if got := outcome(err); got != "fatal" {
		t.Errorf("CI=true: %s, want fatal", got)
	}
	if got := outcome(errors.New("initdb failed")); got != "fatal" {
		t.Errorf("other error: %s, want fatal", got)
	}
	if got := outcome(nil); got != "pass" {
		t.Errorf("nil error: %s, want pass", got)
	}
}

func TestFindBinDirPrefersNewestDebianMajor(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "16"} {
		dir := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
			if v == "16" && tool == "postgres" {
				continue // incomplete install: must be passed over
			}
			if err := os.WriteFile(filepath.Join(dir, tool), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := debianBinGlob
	debianBinGlob = filepath.Join(root, "*", "bin")
	t.Cleanup(func() { debianBinGlob = old })
	if got, want := findBinDir(), filepath.Join(root, "15", "bin"); got != want {
		t.Fatalf("findBinDir = %q, want %q", got, want)
	}
}

// outcome runs RequireOrSkip against a recording TB and says what it did.
func outcome(err error) (what string) {
	tb := &recordingTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		RequireOrSkip(tb, err)
	}()
	<-done
	switch {
	case tb.skipped:
		return "skip"
	case tb.failed:
		return "fatal"
	}
	return "pass"
}

// recordingTB records Skip and Fatal instead of acting on them; both end the calling goroutine
// as the real ones do.
type recordingTB struct {
	testing.TB
	skipped, failed bool
}

func (r *recordingTB) Helper()           {}
func (r *recordingTB) Skip(args ...any)  { r.skipped = true; runtime.Goexit() }
func (r *recordingTB) Fatal(args ...any) { r.failed = true; runtime.Goexit() }
func (r *recordingTB) Cleanup(f func())  {}

func TestBaseDirFallsBackToTmp(t *testing.T) {
	private := filepath.Join(t.TempDir(), "private") // before TMPDIR changes
	t.Setenv("TMPDIR", "/"+strings.Repeat("x", 90))
	if got := baseDir(false); got != "/tmp" {
		t.Errorf("long TMPDIR: %q, want /tmp", got)
	}
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", private)
	if got := baseDir(true); got != "/tmp" {
		t.Errorf("TMPDIR closed to others, server as another user: %q, want /tmp", got)
	}
	if got := baseDir(false); got != private {
		t.Errorf("TMPDIR for the same user: %q, want %q", got, private)
	}
}

// Package pgtest starts throwaway PostgreSQL clusters, and PgBouncers in front of them, for
// tests and benchmarks.
//
// A cluster is initdb'ed into a fresh temporary directory, listens on a free 127.0.0.1 port
// (and on a unix socket inside that directory), runs with durability switched off (fsync=off),
// and is stopped with an immediate shutdown and removed afterwards. When the process runs as
// root, initdb and pg_ctl run as the "postgres" user, because PostgreSQL refuses to run as root.
// When DATABASE_URL is set, no cluster is started and that server is used instead.
//
// A Bouncer is a throwaway PgBouncer (StartBouncer, NewBouncer) on another free 127.0.0.1 port
// in front of a cluster, transaction pooling by default, for testing clients through it.
//
// Typical use, one cluster per test binary:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		connString := pgtest.Shared(t).ConnString()
//		...
//	}
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoPostgres reports that no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found
// on PATH or under /usr/lib/postgresql/*/bin, and DATABASE_URL is not set.
var ErrNoPostgres = errors.New("pgtest: PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin, and DATABASE_URL is not set; install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL")

// ErrLeftover reports that server processes of a stopped cluster were still alive after the
// shutdown; Stop kills them before returning it.
var ErrLeftover = errors.New("pgtest: postgres processes left behind after stop")

// startTimeout bounds initdb plus server start-up; stopTimeout bounds the shutdown.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
)

// Cluster is one running PostgreSQL server: either a throwaway cluster this package started, or
// the external server named by DATABASE_URL. Its methods are safe for concurrent use.
type Cluster struct {
	connString string

	// The fields below are zero for an external (DATABASE_URL) server.
	root    string // temporary directory: data/, the log, the unix socket; removed by Stop
	binDir  string
	port    int
	runAs   *syscall.Credential // nil: run tools as the current user
	pid     int                 // postmaster PID
	stopped sync.Once
	stopErr error
}

// ConnString returns a libpq key/value connection string for the server, e.g.
// "host=127.0.0.1 port=54321 user=postgres dbname=postgres sslmode=disable", or DATABASE_URL
// verbatim when that is set.
func (c *Cluster) ConnString() string { return c.connString }

// External reports whether the cluster is the server named by DATABASE_URL (which Stop leaves
// running) rather than a throwaway one.
func (c *Cluster) External() bool { return c.root == "" }

// Dir returns the cluster's temporary directory (it holds data/, server.log and the unix socket),
// or "" for an external server.
func (c *Cluster) Dir() string { return c.root }

// PID returns the postmaster's process ID, or 0 for an external server.
func (c *Cluster) PID() int { return c.pid }

// Start returns a running server: the one in DATABASE_URL when that is set, otherwise a fresh
// throwaway cluster. It returns an error wrapping ErrNoPostgres when the binaries are missing,
// and other errors (with the tool's output or the server log) when initdb or start-up fail.
// The caller must call Stop.
func Start() (*Cluster, error) {
	if url := os.Getenv("DATABASE_URL"); url != "" {
		return &Cluster{connString: url}, nil
	}
	binDir := findBinDir()
	if binDir == "" {
		return nil, ErrNoPostgres
	}
	runAs, err := credentialForServer()
	if err != nil {
		return nil, err
	}
	reapStale(binDir, runAs)

	var lastErr error
	// A free port can be taken by someone else between probing and binding; retry on that.
	for attempt := 0; attempt < 3; attempt++ {
		c, err := start(binDir, runAs)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port already in use")

func start(binDir string, runAs *syscall.Credential) (c *Cluster, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	root, err := os.MkdirTemp(baseDir(runAs != nil), "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(root)
		}
	}()
	// The owner file lets a later Start reap this cluster if this process dies without Stop.
	if err := os.WriteFile(filepath.Join(root, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if runAs != nil {
		if err := os.Chown(root, int(runAs.Uid), int(runAs.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: chown %s to the postgres user: %w", root, err)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c = &Cluster{root: root, binDir: binDir, port: port, runAs: runAs}
	data := c.dataDir()

	if out, err := c.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	conf := fmt.Sprintf(`
# pgtest: throwaway cluster; speed over durability.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 100
max_wal_size = 256MB
`, port, root)
	if err := appendFile(filepath.Join(data, "postgresql.conf"), conf); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	logPath := filepath.Join(root, "server.log")
	if out, err := c.run(ctx, "pg_ctl", "-D", data, "-l", logPath, "-w", "-t", "60", "start"); err != nil {
		serverLog, _ := os.ReadFile(logPath)
		// pg_ctl may have left a half-started postmaster behind.
		c.readPID()
		c.stop()
		if bytes.Contains(serverLog, []byte("could not bind")) || bytes.Contains(serverLog, []byte("Address already in use")) {
			return nil, fmt.Errorf("pgtest: %w: %d", errPortTaken, port)
		}
		return nil, fmt.Errorf("pgtest: pg_ctl start: %w\n%s\nserver log:\n%s", err, out, serverLog)
	}
	if err := c.readPID(); err != nil {
		c.stop()
		return nil, err
	}
	c.connString = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port)
	return c, nil
}

// Stop shuts the server down (pg_ctl stop -m immediate), makes sure no server process survives,
// and removes the cluster's directory. It does nothing for an external server. Calling it more
// than once returns the first call's result. It returns an error wrapping ErrLeftover if server
// processes had to be killed.
func (c *Cluster) Stop() error {
	if c == nil || c.External() {
		return nil
	}
	c.stopped.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Cluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	procs := c.serverProcs()
	var errs []error
	if c.pid != 0 {
		if out, err := c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "stop"); err != nil {
			errs = append(errs, fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out))
		}
	}
	if left := waitGone(procs, 10*time.Second); len(left) > 0 {
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		errs = append(errs, fmt.Errorf("%w: pids %v", ErrLeftover, left))
	}
	if err := os.RemoveAll(c.root); err != nil {
		errs = append(errs, fmt.Errorf("pgtest: %w", err))
	}
	return errors.Join(errs...)
}

func (c *Cluster) dataDir() string { return filepath.Join(c.root, "data") }

// readPID reads the postmaster PID from the first line of data/postmaster.pid.
func (c *Cluster) readPID() error {
	pid, err := postmasterPID(c.dataDir())
	if err != nil {
		return err
	}
	c.pid = pid
	return nil
}

func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pgtest: bad postmaster.pid in %s", dataDir)
	}
	return pid, nil
}

// run runs a PostgreSQL tool from binDir as the server user, with a clean locale and no PG*
// variables that could point it elsewhere, and returns its combined output.
func (c *Cluster) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	return runTool(ctx, c.binDir, c.root, c.runAs, tool, args...)
}

func runTool(ctx context.Context, binDir, dir string, runAs *syscall.Credential, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, tool), args...)
	// The tools run as postgres, which may not be able to enter the test's working directory.
	cmd.Dir = dir
	cmd.Env = toolEnv()
	if runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs}
	}
	return cmd.CombinedOutput()
}

func toolEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// credentialForServer returns the postgres user's credential when running as root (initdb and
// postgres refuse to run as root), and nil otherwise.
func credentialForServer() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a \"postgres\" user to run the server as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres user has non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// baseDir picks the parent of the cluster directory: os.TempDir(), unless the unix socket path
// inside it would exceed the kernel's limit (about 107 bytes), or, when the server runs as
// another user, that user could not reach it (a 0700 TMPDIR under /root); then /tmp.
func baseDir(otherUser bool) string {
	dir := os.TempDir()
	if len(dir)+len("/pgtest-0123456789/.s.PGSQL.65535") > 100 {
		return "/tmp"
	}
	if otherUser {
		for d := dir; ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil || fi.Mode().Perm()&0o001 == 0 {
				return "/tmp"
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return dir
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoPgBouncer reports that the pgbouncer binary was found neither on PATH nor in /usr/sbin
// (Debian's place for it). RequireOrSkip skips on it outside CI, as it does on ErrNoPostgres.
var ErrNoPgBouncer = errors.New("pgtest: pgbouncer not found on PATH or in /usr/sbin; install it (Debian: apt-get install pgbouncer)")

// bouncerStartTimeout bounds PgBouncer's start-up (until it accepts connections).
const bouncerStartTimeout = 30 * time.Second

// BouncerConfig is the PgBouncer setting a test needs; zero fields take the defaults given.
type BouncerConfig struct {
	// PoolMode is pool_mode: "transaction" (the default here), "session" or "statement".
	PoolMode string
	// DefaultPoolSize is default_pool_size, the most server connections per database/user
	// pair. Default 20 (PgBouncer's own default).
	DefaultPoolSize int
	// MaxClientConn is max_client_conn. Default 200.
	MaxClientConn int
}

// Bouncer is one throwaway PgBouncer process listening on a free 127.0.0.1 port, in front of
// a Cluster. Its methods are safe for concurrent use.
type Bouncer struct {
	connString string
	port       int
	root       string
	cmd        *exec.Cmd
	exited     chan struct{} // closed when the process has been waited for
	stopped    sync.Once
	stopErr    error
}

// ConnString returns a key/value connection string for the database "postgres" through the
// bouncer, as user postgres, e.g. "host=127.0.0.1 port=6433 user=postgres dbname=postgres
// sslmode=disable".
func (b *Bouncer) ConnString() string { return b.connString }

// Port returns the TCP port PgBouncer listens on.
func (b *Bouncer) Port() int { return b.port }

// debianPgBouncer is where Debian installs pgbouncer (not on a non-root PATH); tests replace it.
var debianPgBouncer = "/usr/sbin/pgbouncer"

// findPgBouncer returns the pgbouncer binary's path, or "".
func findPgBouncer() string {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p
	}
	if fi, err := os.Stat(debianPgBouncer); err == nil && fi.Mode()&0o111 != 0 {
		return debianPgBouncer
	}
	return ""
}

// StartBouncer starts PgBouncer in front of c with cfg: client authentication off
// (auth_type=any), every client logged in to the server as c's user into c's database, one
// server pool of cfg.DefaultPoolSize connections. As root it runs as the postgres user
// (PgBouncer refuses to run as root). It returns an error wrapping ErrNoPgBouncer when the binary
// is missing, and other errors (with PgBouncer's log) when it does not start. The caller must
// call Stop.
func StartBouncer(c *Cluster, cfg BouncerConfig) (*Bouncer, error) {
	bin := findPgBouncer()
	if bin == "" {
		return nil, ErrNoPgBouncer
	}
	if cfg.PoolMode == "" {
		cfg.PoolMode = "transaction"
	}
	if cfg.DefaultPoolSize == 0 {
		cfg.DefaultPoolSize = 20
	}
	if cfg.MaxClientConn == 0 {
		cfg.MaxClientConn = 200
	}
	server, err := pgconn.ParseConfig(c.ConnString())
	if err != nil {
		return nil, fmt.Errorf("pgtest: bouncer: parsing the cluster's connection string: %w", err)
	}
	runAs, err := credentialForServer()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a probed free port can be taken before PgBouncer binds it
		b, err := startBouncer(bin, server, cfg, runAs)
		if err == nil {
			return b, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

func startBouncer(bin string, server *pgconn.Config, cfg BouncerConfig, runAs *syscall.Credential) (b *Bouncer, err error) {
	root, err := os.MkdirTemp(baseDir(runAs != nil), "pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(root)
		}
	}()
	if runAs != nil {
		if err := os.Chown(root, int(runAs.Uid), int(runAs.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: chown %s to the postgres user: %w", root, err)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	target := fmt.Sprintf("host=%s port=%d dbname=%s user=%s", quoteConnValue(server.Host), server.Port,
		quoteConnValue(server.Database), quoteConnValue(server.User))
	if server.Password != "" {
		target += " password=" + quoteConnValue(server.Password)
	}
	logPath := filepath.Join(root, "pgbouncer.log")
	ini := fmt.Sprintf(`[databases]
%s = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = any
pool_mode = %s
default_pool_size = %d
max_client_conn = %d
ignore_startup_parameters = extra_float_digits
server_login_retry = 1
logfile = %s
pidfile = %s
`, server.Database, target, port, cfg.PoolMode, cfg.DefaultPoolSize, cfg.MaxClientConn, logPath, filepath.Join(root, "pgbouncer.pid"))
	iniPath := filepath.Join(root, "pgbouncer.ini")
	if err := os.WriteFile(iniPath, []byte(ini), 0o644); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}

	cmd := exec.Command(bin, iniPath)
	cmd.Dir = root
	cmd.Env = toolEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: starting pgbouncer: %w", err)
	}
	b = &Bouncer{
		connString: fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", port, server.User, server.Database),
		port:       port,
		root:       root,
		cmd:        cmd,
		exited:     make(chan struct{}),
	}
	go func() {
		cmd.Wait()
		close(b.exited)
	}()
	if err := b.waitListening(); err != nil {
		b.kill()
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte("Address already in use")) || bytes.Contains(out.Bytes(), []byte("Address already in use")) {
			return nil, fmt.Errorf("pgtest: bouncer: %w: %d", errPortTaken, port)
		}
		return nil, fmt.Errorf("pgtest: pgbouncer did not start: %w\n%s\nlog:\n%s", err, out.Bytes(), log)
	}
	return b, nil
}

// waitListening polls until PgBouncer accepts TCP connections, exits, or bouncerStartTimeout
// passes.
func (b *Bouncer) waitListening() error {
	deadline := time.Now().Add(bouncerStartTimeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
	for {
		select {
		case <-b.exited:
			return errors.New("pgbouncer exited")
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the process at once and waits for it.
func (b *Bouncer) kill() {
	b.cmd.Process.Kill()
	<-b.exited
}

// Stop shuts PgBouncer down (SIGINT, its safe shutdown; SIGKILL after stopTimeout) and removes
// its directory. Calling it more than once returns the first call's result.
func (b *Bouncer) Stop() error {
	if b == nil {
		return nil
	}
	b.stopped.Do(func() {
		b.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-b.exited:
		case <-time.After(stopTimeout):
			b.kill()
			b.stopErr = fmt.Errorf("%w: pgbouncer pid %d did not stop on SIGINT", ErrLeftover, b.cmd.Process.Pid)
		}
		if err := os.RemoveAll(b.root); err != nil {
			b.stopErr = errors.Join(b.stopErr, fmt.Errorf("pgtest: %w", err))
		}
	})
	return b.stopErr
}

// NewBouncer starts PgBouncer with cfg in front of c for tb alone, and stops it in tb.Cleanup.
// It skips or fails tb as RequireOrSkip does when PgBouncer is missing.
func NewBouncer(tb testing.TB, c *Cluster, cfg BouncerConfig) *Bouncer {
	tb.Helper()
	b, err := StartBouncer(c, cfg)
	RequireOrSkip(tb, err)
	tb.Cleanup(func() {
		if err := b.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return b
}

// Log returns PgBouncer's log so far, for test failure messages.
func (b *Bouncer) Log() string {
	log, _ := os.ReadFile(filepath.Join(b.root, "pgbouncer.log"))
	return strings.TrimSpace(string(log))
}

// quoteConnValue quotes v for a libpq-style key=value string (PgBouncer's [databases] entries):
// in single quotes, with backslashes and single quotes escaped by a backslash.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

package pgpool_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/muxpool/muxpool/pool/pgpool"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := pgpool.ParseConfig("host=127.0.0.1 user=u")
	if err != nil {
		t.Fatal(err)
	}
	if want := max(4, int32(runtime.NumCPU())); cfg.MaxConns != want {
		t.Errorf("MaxConns = %d, want %d", cfg.MaxConns, want)
	}
	if cfg.MinConns != 0 || cfg.MinIdleConns != 0 || cfg.MaxConnLifetimeJitter != 0 || cfg.PingTimeout != 0 {
		t.Errorf("zero defaults: %+v", cfg)
	}
	if cfg.MaxConnLifetime != time.Hour || cfg.MaxConnIdleTime != 30*time.Minute || cfg.HealthCheckPeriod != time.Minute {
		t.Errorf("duration defaults: lifetime %v idle %v health %v", cfg.MaxConnLifetime, cfg.MaxConnIdleTime, cfg.HealthCheckPeriod)
	}
}

func TestParseConfigPoolKeys(t *testing.T) {
	for _, connString := range []string{
		"host=127.0.0.1 user=u pool_max_conns=7 pool_min_conns=2 pool_min_idle_conns=3 pool_max_conn_lifetime=1h30m " +
			"pool_max_conn_lifetime_jitter=5m pool_max_conn_idle_time=90s pool_health_check_period=15s pool_ping_timeout=250ms search_path=x",
		"postgres://u@127.0.0.1/db?pool_max_conns=7&pool_min_conns=2&pool_min_idle_conns=3&pool_max_conn_lifetime=1h30m" +
			"&pool_max_conn_lifetime_jitter=5m&pool_max_conn_idle_time=90s&pool_health_check_period=15s&pool_ping_timeout=250ms&search_path=x",
	} {
		cfg, err := pgpool.ParseConfig(connString)
		if err != nil {
			t.Fatal(err)
		}
		got := []any{cfg.MaxConns, cfg.MinConns, cfg.MinIdleConns, cfg.MaxConnLifetime, cfg.MaxConnLifetimeJitter,
			cfg.MaxConnIdleTime, cfg.HealthCheckPeriod, cfg.PingTimeout}
		want := []any{int32(7), int32(2), int32(3), 90 * time.Minute, 5 * time.Minute, 90 * time.Second, 15 * time.Second, 250 * time.Millisecond}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%q: field %d = %v, want %v", connString, i, got[i], want[i])
			}
		}
		// Pool keys must not reach the server; other runtime parameters must.
		for k := range cfg.ConnConfig.RuntimeParams {
			if strings.HasPrefix(k, "pool_") {
				t.Errorf("%q: %s left in RuntimeParams", connString, k)
			}
		}
		if cfg.ConnConfig.RuntimeParams["search_path"] != "x" {
			t.Errorf("%q: search_path lost: %v", connString, cfg.ConnConfig.RuntimeParams)
		}
		if cfg.ConnString() != connString {
			t.Errorf("ConnString = %q", cfg.ConnString())
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, kv := range []string{
		"pool_max_conns=abc", "pool_max_conns=0", "pool_max_conns=-1", "pool_max_conns=99999999999",
		"pool_min_conns=x", "pool_min_conns=-1", "pool_min_conns=5 pool_max_conns=4",
		"pool_min_idle_conns=1.5", "pool_min_idle_conns=9 pool_max_conns=8",
		"pool_max_conn_lifetime=forever", "pool_max_conn_lifetime_jitter=-1s", "pool_max_conn_idle_time=10",
		"pool_health_check_period=0s", "pool_health_check_period=-1m", "pool_ping_timeout=soon", "pool_ping_timeout=-1ms",
	} {
		cfg, err := pgpool.ParseConfig("host=127.0.0.1 user=u " + kv)
		var pe *pgconn.ParseConfigError
		if !errors.As(err, &pe) || !errors.Is(err, pgpool.ErrInvalidConfig) {
			t.Errorf("%s: err = %v (cfg %v), want *pgconn.ParseConfigError matching ErrInvalidConfig", kv, err, cfg)
			continue
		}
		key, _, _ := strings.Cut(kv, "=")
		if !strings.Contains(err.Error(), key) && !strings.Contains(kv, " ") {
			t.Errorf("%s: error %q does not name the key", kv, err)
		}
	}
	// pgx's own errors pass through.
	if _, err := pgpool.ParseConfig("postgres://%zz"); err == nil {
		t.Error("bad URL accepted")
	}
}

func TestParseConfigNegativeLimitsMeanNoLimit(t *testing.T) {
	cfg, err := pgpool.ParseConfig("host=127.0.0.1 user=u pool_max_conn_lifetime=-1s pool_max_conn_idle_time=0s")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnLifetime != -time.Second || cfg.MaxConnIdleTime != 0 {
		t.Fatalf("lifetime %v idle %v", cfg.MaxConnLifetime, cfg.MaxConnIdleTime)
	}
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
}

func TestNewWithConfigRejectsBadConfig(t *testing.T) {
	good, err := pgpool.ParseConfig("host=127.0.0.1 user=u")
	if err != nil {
		t.Fatal(err)
	}
	noConn := good.Copy()
	noConn.ConnConfig = nil
	zeroMax := good.Copy()
	zeroMax.MaxConns = 0
	minOver := good.Copy()
	minOver.MinConns = good.MaxConns + 1
	for name, cfg := range map[string]*pgpool.Config{"nil": nil, "no ConnConfig": noConn, "MaxConns 0": zeroMax, "MinConns > MaxConns": minOver} {
		if _, err := pgpool.NewWithConfig(context.Background(), cfg); !errors.Is(err, pgpool.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := pgpool.New(context.Background(), "pool_max_conns=none"); err == nil {
		t.Error("New accepted a bad pool key")
	}
}

func TestHandMadeConnConfigFailsAcquireWithoutPanic(t *testing.T) {
	p, err := pgpool.NewWithConfig(context.Background(), &pgpool.Config{ConnConfig: &pgx.ConnConfig{}, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Acquire(ctx); !errors.Is(err, pgpool.ErrInvalidConfig) {
		t.Fatalf("Acquire with a hand-made ConnConfig: %v, want ErrInvalidConfig", err)
	}
}

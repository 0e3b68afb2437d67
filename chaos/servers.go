package chaos

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// servers drives the profile's Postgres and ClickHouse through
// scripts/services.sh, the one place that knows how to start, stop and
// restore them (as root, as the postgres user).
type servers struct {
	script  string
	profile string
	log     io.Writer
}

// run runs `services.sh command profile`.
func (s servers) run(ctx context.Context, command string) error {
	cmd := exec.CommandContext(ctx, "bash", s.script, command, s.profile)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("services.sh %s %s: %w (see the harness log)", command, s.profile, err)
	}
	return nil
}

func (s servers) start(ctx context.Context) error           { return s.run(ctx, "start") }
func (s servers) stop(ctx context.Context) error            { return s.run(ctx, "stop") }
func (s servers) clean(ctx context.Context) error           { return s.run(ctx, "clean") }
func (s servers) restartPostgres(ctx context.Context) error { return s.run(ctx, "restart-postgres") }
func (s servers) stopClickHouse(ctx context.Context) error  { return s.run(ctx, "stop-clickhouse") }
func (s servers) backup(ctx context.Context) error          { return s.run(ctx, "backup") }
func (s servers) restore(ctx context.Context) error         { return s.run(ctx, "restore") }

// switchWAL closes the current WAL segment and waits until the archiver
// has archived it, so the archive holds every write committed before.
func switchWAL(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var segment string
	if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_switch_wal())`).Scan(&segment); err != nil {
		return fmt.Errorf("pg_switch_wal: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var archived *string
		if err := conn.QueryRow(ctx, `SELECT last_archived_wal FROM pg_stat_archiver`).Scan(&archived); err != nil {
			return err
		}
		if archived != nil && *archived >= segment {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("WAL segment %s not archived within 2 minutes", segment)
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// ServersError is a failure to start the profile's servers (for a test to
// tell "cannot run here" from a failed run).
type ServersError struct{ Err error }

func (e *ServersError) Error() string { return "start the servers: " + e.Err.Error() }
func (e *ServersError) Unwrap() error { return e.Err }

// UseProfile fills in cfg's Services, Profile and the servers' addresses
// from `services.sh env profile`.
func (cfg *Config) UseProfile(ctx context.Context, script, profile string) error {
	out, err := exec.CommandContext(ctx, "bash", script, "env", profile).Output()
	if err != nil {
		return fmt.Errorf("services.sh env %s: %w", profile, err)
	}
	cfg.Services, cfg.Profile = script, profile
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, "'")
		switch k {
		case "HDF_POSTGRES_URL":
			cfg.PostgresURL = v
		case "HDF_CLICKHOUSE_ADDR":
			cfg.ClickHouseAddr = v
		case "HDF_CLICKHOUSE_DATABASE":
			cfg.ClickHouseDatabase = v
		case "HDF_CHAOS_RESTORE_URL":
			cfg.RestoreURL = v
		}
	}
	if cfg.PostgresURL == "" || cfg.ClickHouseAddr == "" || cfg.RestoreURL == "" {
		return fmt.Errorf("services.sh env %s printed no Postgres, ClickHouse or restore address", profile)
	}
	return nil
}

package projections

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/helpdeskflow/helpdeskflow"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// projectionTables are the tables Truncate empties: everything the projector
// builds, but not schema_migrations.
var projectionTables = []string{"tickets", "tickets_by_created", "tickets_by_customer", "customers", "ticket_messages", "audit_log",
	"ticket_history", "ticket_service", "automation_firings", positionsTable}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// OpenClickHouse connects to the ClickHouse server at addr over the native
// protocol, creates database if it does not exist yet, and returns a
// connection pool bound to it. addr is either "host:port" (user "default",
// no password) or a DSN such as "clickhouse://user:password@host:9000"
// (its database part is ignored in favour of database). The caller closes the
// returned conn.
//
// It returns an EValidation error when database is not a plain identifier
// (letters, digits and underscores) or the DSN does not parse, EUnavailable
// when the server cannot be reached, and EInternal when the server refuses
// to create the database.
func OpenClickHouse(ctx context.Context, addr, database string) (driver.Conn, error) {
	if !identifier.MatchString(database) {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid ClickHouse database name",
			Details: []helpdeskflow.FieldProblem{{Field: "database", Problem: "must be letters, digits and underscores"}}}
	}
	opts := &clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = clickhouse.ParseDSN(addr); err != nil {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid ClickHouse address", Err: err,
				Details: []helpdeskflow.FieldProblem{{Field: "addr", Problem: "malformed"}}}
		}
		if opts.Protocol != clickhouse.Native {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "ClickHouse address must use the native protocol",
				Details: []helpdeskflow.FieldProblem{{Field: "addr", Problem: "not native protocol"}}}
		}
	}

	// A connection keeps the buffer it encoded its largest block into
	// unless told to drop it on release: the projector's inserts of up to
	// MaxBatchBytes would otherwise keep tens of MiB live per pooled
	// connection for the process's life, and near the memory limit the
	// collector then runs without pause (measured in `make bench`: 68 MiB of
	// such buffers kept an idle dev process a quarter of a core busy in GC).
	opts.FreeBufOnConnRelease = true

	// Connect to the always-present "default" database first: the target
	// may not exist yet.
	bootstrap := *opts
	bootstrap.Auth.Database = "default"
	conn, err := clickhouse.Open(&bootstrap)
	if err != nil {
		return nil, chError("open ClickHouse", err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, chError("reach ClickHouse", err)
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+database); err != nil {
		_ = conn.Close()
		return nil, chError("create ClickHouse database", err)
	}
	_ = conn.Close()

	bound := *opts
	bound.Auth.Database = database
	conn, err = clickhouse.Open(&bound)
	if err != nil {
		return nil, chError("open ClickHouse", err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, chError("reach ClickHouse", err)
	}
	return conn, nil
}

type migration struct {
	version int
	name    string
	stmts   []string
}

func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var ms []migration
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and an underscore", name)
		}
		body, err := migrationFiles.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: version, name: name, stmts: splitStatements(string(body))})
	}
	return ms, nil
}

// splitStatements cuts a migration file into statements at semicolons that
// end a line, and drops comment-only and empty pieces: the native protocol
// takes one statement per query.
func splitStatements(body string) []string {
	var stmts []string
	for _, piece := range strings.Split(body, ";\n") {
		var kept []string
		for _, line := range strings.Split(piece, "\n") {
			trimmed := strings.TrimSpace(line)
			if trimmed == "" || strings.HasPrefix(trimmed, "--") {
				continue
			}
			kept = append(kept, line)
		}
		stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(kept, "\n")), ";")
		if stmt != "" {
			stmts = append(stmts, stmt)
		}
	}
	return stmts
}

// Migrate applies the embedded ClickHouse migrations (projections/migrations,
// in file name order) that the schema_migrations table of conn's database
// does not record yet, and records each one after it ran. ClickHouse has no
// transactions, so every statement is idempotent (CREATE … IF NOT EXISTS):
// running Migrate twice, or concurrently from two processes, is harmless.
//
// It returns EUnavailable when ClickHouse cannot be reached and EInternal
// when a statement fails.
func Migrate(ctx context.Context, conn driver.Conn) error {
	return migrateUpTo(ctx, conn, math.MaxInt)
}

// migrateUpTo is Migrate for the migrations numbered up to last.
func migrateUpTo(ctx context.Context, conn driver.Conn, last int) error {
	ms, err := loadMigrations()
	if err != nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "load ClickHouse migrations", Err: err}
	}
	const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree
ORDER BY version`
	if err := conn.Exec(ctx, createMigrations); err != nil {
		return chError("create schema_migrations", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations")
	if err != nil {
		return chError("read schema_migrations", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return chError("read schema_migrations", err)
		}
		applied[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return chError("read schema_migrations", err)
	}

	for _, m := range ms {
		if applied[m.version] || m.version > last {
			continue
		}
		if err := m.apply(ctx, conn); err != nil {
			return err
		}
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
		if err != nil {
			return chError("record ClickHouse migration "+m.name, err)
		}
		if err := batch.Append(uint32(m.version), m.name, time.Now().UTC().Truncate(time.Second)); err != nil {
			_ = batch.Abort()
			return chError("record ClickHouse migration "+m.name, err)
		}
		if err := batch.Send(); err != nil {
			return chError("record ClickHouse migration "+m.name, err)
		}
	}
	return nil
}

// apply runs m's statements in order.
func (m migration) apply(ctx context.Context, conn driver.Conn) error {
	for _, stmt := range m.stmts {
		if err := conn.Exec(ctx, stmt); err != nil {
			return chError("apply ClickHouse migration "+m.name, err)
		}
	}
	return nil
}

// Truncate empties the projection tables (tickets, tickets_by_created,
// tickets_by_customer, customers, ticket_messages, audit_log, the analytics
// tables ticket_history, ticket_service and automation_firings, and
// projection_positions, which would otherwise claim what is gone) of conn's
// database, keeping their schema and schema_migrations. The caller then
// resets the projector group's offsets to the start of the topic, with no
// projector running meanwhile, to project everything again from Kafka;
// `helpdeskflow projections rebuild` (Rebuild) rebuilds from the event
// store instead, without stopping anything.
//
// It returns EUnavailable when ClickHouse cannot be reached and EInternal
// when a table cannot be truncated.
func Truncate(ctx context.Context, conn driver.Conn) error {
	for _, table := range projectionTables {
		if err := conn.Exec(ctx, "TRUNCATE TABLE IF EXISTS "+table); err != nil {
			return chError("truncate "+table, err)
		}
	}
	return nil
}

// ClickHouse server error codes that mean "try again later" rather than
// "this statement is wrong".
var transientExceptionCodes = map[int32]bool{
	159: true, // TIMEOUT_EXCEEDED
	160: true, // TOO_SLOW
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	203: true, // NO_FREE_CONNECTION
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	319: true, // UNKNOWN_STATUS_OF_INSERT
}

// chError translates an error of clickhouse-go into the application error:
// EUnavailable when the server could not be reached or is overloaded, and
// EInternal for everything else (the server refused the statement). The
// cause stays in Err for logs.
func chError(msg string, err error) error {
	if err == nil {
		return nil
	}
	var appErr *helpdeskflow.Error
	if errors.As(err, &appErr) {
		return err
	}
	return &helpdeskflow.Error{Code: chErrorCode(err), Message: msg, Err: err}
}

func chErrorCode(err error) string {
	var exc *clickhouse.Exception
	if errors.As(err, &exc) {
		if transientExceptionCodes[exc.Code] {
			return helpdeskflow.EUnavailable
		}
		return helpdeskflow.EInternal
	}
	var netErr net.Error
	var errno syscall.Errno
	switch {
	case errors.As(err, &netErr),
		errors.As(err, &errno),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.Is(err, clickhouse.ErrAcquireConnTimeout),
		errors.Is(err, clickhouse.ErrConnectionClosed):
		return helpdeskflow.EUnavailable
	}
	return helpdeskflow.EInternal
}

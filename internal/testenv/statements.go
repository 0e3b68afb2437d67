package testenv

import (
	"context"
	"maps"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Statements records the SQL of every statement sent on the connections
// of a CountingPostgres database, single or in a batch (a batch's BEGIN
// and COMMIT count as statements too). It is safe for concurrent use.
type Statements struct {
	mu    sync.Mutex
	count map[string]int
}

// Count returns how many statements were sent since the database was made
// or Reset.
func (s *Statements) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.count {
		n += c
	}
	return n
}

// BySQL returns how many times each statement's SQL was sent since the
// database was made or Reset.
func (s *Statements) BySQL() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.count)
}

// Reset starts counting again from 0.
func (s *Statements) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.count)
}

func (s *Statements) add(sql string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[sql]++
}

// CountingPostgres returns a new migrated database, like Postgres, whose
// connections record every statement they send in the returned
// Statements (the migrations are not counted); it is closed when t ends.
func CountingPostgres(t testing.TB) (*pg.DB, *Statements) {
	t.Helper()
	s := &Statements{count: map[string]int{}}
	return pg.Open(tracedPool(t, statementTracer{s})), s
}

// tracedPool is a pool on a new migrated database whose connections trace
// with tracer; it is closed when t ends.
func tracedPool(t testing.TB, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(PostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "10s"
	cfg.AfterConnect = pg.AfterConnect
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// statementTracer is a pgx tracer feeding Statements.
type statementTracer struct{ s *Statements }

func (r statementTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.s.add(data.SQL)
	return ctx
}

func (statementTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (statementTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (r statementTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	r.s.add(data.SQL)
}

func (statementTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

package testenv

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// ReadCounter counts the rows Postgres returned to the statements whose SQL
// contains a string, on the connections of a CountingStore. It is safe for
// concurrent use.
type ReadCounter struct {
	match      string
	rows       atomic.Int64
	roundTrips atomic.Int64
}

// Rows returns the rows counted since the store was made or Reset.
func (c *ReadCounter) Rows() int64 { return c.rows.Load() }

// RoundTrips returns the statements and batches sent (each one round trip,
// once their statements are prepared) since the store was made or Reset,
// besides the notifications that wake the relay (sent after commits on a
// timer, not on behalf of one request).
func (c *ReadCounter) RoundTrips() int64 { return c.roundTrips.Load() }

// Reset starts counting again from 0.
func (c *ReadCounter) Reset() { c.rows.Store(0); c.roundTrips.Store(0) }

func (c *ReadCounter) count(sql string, tag int64) {
	if strings.Contains(sql, c.match) {
		c.rows.Add(tag)
	}
}

// CountingStore returns an event store on a new migrated database, like
// Store, whose connections count in the returned ReadCounter the rows
// returned to every statement (single or in a batch) whose SQL contains
// match, such as "FROM events".
func CountingStore(t testing.TB, match string) (*eventstore.Store, *ReadCounter) {
	t.Helper()
	counter := &ReadCounter{match: match}
	pool := tracedPool(t, rowTracer{counter})
	s, err := eventstore.New(pg.Open(pool), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, counter
}

// rowTracer is a pgx tracer feeding a ReadCounter.
type rowTracer struct{ c *ReadCounter }

type sqlKey struct{}

func (r rowTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(data.SQL, "pg_notify(") {
		r.c.roundTrips.Add(1)
	}
	return context.WithValue(ctx, sqlKey{}, data.SQL)
}

func (r rowTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if sql, ok := ctx.Value(sqlKey{}).(string); ok && data.Err == nil && data.CommandTag.Select() {
		r.c.count(sql, data.CommandTag.RowsAffected())
	}
}

func (r rowTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.c.roundTrips.Add(1)
	return ctx
}

func (r rowTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if data.Err == nil && data.CommandTag.Select() {
		r.c.count(data.SQL, data.CommandTag.RowsAffected())
	}
}

func (r rowTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

package projections_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// benchAuditRow is an audit_log row (the widest table the projector
// writes), tagged for AppendStruct.
type benchAuditRow struct {
	WorkspaceID   uuid.UUID `ch:"workspace_id"`
	StreamID      uuid.UUID `ch:"stream_id"`
	StreamType    string    `ch:"stream_type"`
	Version       uint64    `ch:"version"`
	EventID       uuid.UUID `ch:"event_id"`
	EventType     string    `ch:"event_type"`
	SchemaVersion uint16    `ch:"schema_version"`
	ActorType     string    `ch:"actor_type"`
	ActorID       string    `ch:"actor_id"`
	Channel       string    `ch:"channel"`
	RequestID     string    `ch:"request_id"`
	RuleID        string    `ch:"rule_id"`
	CausationID   string    `ch:"causation_id"`
	CorrelationID string    `ch:"correlation_id"`
	ChangedFields []string  `ch:"changed_fields"`
	OldValues     []string  `ch:"old_values"`
	NewValues     []string  `ch:"new_values"`
	Data          string    `ch:"data"`
	OccurredAt    time.Time `ch:"occurred_at"`
	OccurredAtMs  int64     `ch:"occurred_at_ms"`
}

const benchAuditColumns = "workspace_id, stream_id, stream_type, version, event_id, event_type, schema_version, " +
	"actor_type, actor_id, channel, request_id, rule_id, causation_id, correlation_id, " +
	"changed_fields, old_values, new_values, data, occurred_at, occurred_at_ms"

// BenchmarkInsertAuditRows compares the ways clickhouse-go v2 takes a
// batch of 2,000 audit_log rows on the test ClickHouse: row by row as []any
// (Append), row by row from a struct (AppendStruct), and column by column
// (Column(i).Append of a slice). ns/row and allocs/op include sending and
// the server's work, the same for all three; append-ns/row is the appends
// alone.
func BenchmarkInsertAuditRows(b *testing.B) {
	conn, _ := newDB(b)
	const n = 2000
	ws := uuid.New()
	rows := make([]benchAuditRow, n)
	for i := range rows {
		rows[i] = benchAuditRow{WorkspaceID: ws, StreamID: uuid.New(), StreamType: "ticket", Version: 1, EventID: uuid.New(),
			EventType: "ticket.created", SchemaVersion: 1, ActorType: "api_key", ActorID: uuid.NewString(), Channel: "api",
			RequestID: "req_0123456789abcdef", ChangedFields: []string{"status", "subject"}, OldValues: []string{"null", "null"},
			NewValues: []string{`"new"`, `"Order 4711 arrived damaged"`}, Data: `{"subject":"` + strings.Repeat("x", 600) + `"}`,
			OccurredAt: time.Now().UTC().Truncate(time.Second), OccurredAtMs: time.Now().UnixMilli()}
	}
	insert := func(b *testing.B, fill func(driver.Batch) error) {
		b.ReportAllocs()
		var filling time.Duration
		for b.Loop() {
			batch, err := conn.PrepareBatch(context.Background(), "INSERT INTO audit_log ("+benchAuditColumns+")")
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := fill(batch); err != nil {
				b.Fatal(err)
			}
			filling += time.Since(start)
			if err := batch.Send(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		b.ReportMetric(float64(filling.Nanoseconds())/float64(b.N*n), "append-ns/row")
	}
	b.Run("rows", func(b *testing.B) {
		insert(b, func(batch driver.Batch) error {
			for i := range rows {
				r := &rows[i]
				if err := batch.Append(r.WorkspaceID, r.StreamID, r.StreamType, r.Version, r.EventID, r.EventType, r.SchemaVersion,
					r.ActorType, r.ActorID, r.Channel, r.RequestID, r.RuleID, r.CausationID, r.CorrelationID,
					r.ChangedFields, r.OldValues, r.NewValues, r.Data, r.OccurredAt, r.OccurredAtMs); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("struct", func(b *testing.B) {
		insert(b, func(batch driver.Batch) error {
			for i := range rows {
				if err := batch.AppendStruct(&rows[i]); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("columns", func(b *testing.B) {
		insert(b, func(batch driver.Batch) error {
			cols := []any{
				column(rows, func(r *benchAuditRow) uuid.UUID { return r.WorkspaceID }),
				column(rows, func(r *benchAuditRow) uuid.UUID { return r.StreamID }),
				column(rows, func(r *benchAuditRow) string { return r.StreamType }),
				column(rows, func(r *benchAuditRow) uint64 { return r.Version }),
				column(rows, func(r *benchAuditRow) uuid.UUID { return r.EventID }),
				column(rows, func(r *benchAuditRow) string { return r.EventType }),
				column(rows, func(r *benchAuditRow) uint16 { return r.SchemaVersion }),
				column(rows, func(r *benchAuditRow) string { return r.ActorType }),
				column(rows, func(r *benchAuditRow) string { return r.ActorID }),
				column(rows, func(r *benchAuditRow) string { return r.Channel }),
				column(rows, func(r *benchAuditRow) string { return r.RequestID }),
				column(rows, func(r *benchAuditRow) string { return r.RuleID }),
				column(rows, func(r *benchAuditRow) string { return r.CausationID }),
				column(rows, func(r *benchAuditRow) string { return r.CorrelationID }),
				column(rows, func(r *benchAuditRow) []string { return r.ChangedFields }),
				column(rows, func(r *benchAuditRow) []string { return r.OldValues }),
				column(rows, func(r *benchAuditRow) []string { return r.NewValues }),
				column(rows, func(r *benchAuditRow) string { return r.Data }),
				column(rows, func(r *benchAuditRow) time.Time { return r.OccurredAt }),
				column(rows, func(r *benchAuditRow) int64 { return r.OccurredAtMs }),
			}
			for i, c := range cols {
				if err := batch.Column(i).Append(c); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

func column[R, T any](rows []R, field func(*R) T) []T {
	out := make([]T, len(rows))
	for i := range rows {
		out[i] = field(&rows[i])
	}
	return out
}

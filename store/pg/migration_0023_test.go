package pg_test

import (
	"context"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestMigration0023_EventsDataJSON runs the migration over an events table
// whose data is still jsonb, with an event in it: the column becomes json
// and the event's data keeps its content (in jsonb's text form).
func TestMigration0023_EventsDataJSON(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	sql, err := os.ReadFile("migrations/0023_events_data_json.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `ALTER TABLE events ALTER COLUMN data TYPE jsonb USING data::jsonb`); err != nil {
		t.Fatal(err)
	}
	stream, id := uuid.New(), uuid.New()
	if _, err := db.Pool().Exec(ctx, `WITH st AS (INSERT INTO streams (id, workspace_id, type, version) VALUES ($1, $2, 'ticket', 1))
		INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata)
		VALUES ($3, $1, 'ticket', 1, $2, 'ticket.updated', 1, '{"subject":"Hi","a":[1,2]}'::jsonb, '{"actor":{"type":"system"},"channel":"system"}')`,
		stream, uuid.New(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, string(sql)); err != nil {
		t.Fatal(err)
	}
	var typ, data string
	if err := db.Pool().QueryRow(ctx, `SELECT pg_typeof(data)::text, data::text FROM events WHERE id = $1`, id).Scan(&typ, &data); err != nil {
		t.Fatal(err)
	}
	if want := `{"a": [1, 2], "subject": "Hi"}`; typ != "json" || data != want {
		t.Errorf("data is %s %s, want json %s", typ, data, want)
	}
}

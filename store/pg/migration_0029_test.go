package pg_test

import (
	"context"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestMigration0029_BackfillsTicketExternalIDs runs the migration over
// tickets created before it: each external id is indexed for the oldest
// ticket created with it, per workspace; tickets without one are not.
func TestMigration0029_BackfillsTicketExternalIDs(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	sql, err := os.ReadFile("migrations/0029_external_ids.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `DROP TABLE external_ids`); err != nil {
		t.Fatal(err)
	}
	ws, other := uuid.New(), uuid.New()
	create := func(workspace uuid.UUID, data string) uuid.UUID {
		t.Helper()
		stream := uuid.New()
		if _, err := db.Pool().Exec(ctx, `WITH st AS (INSERT INTO streams (id, workspace_id, type, version) VALUES ($1, $2, 'ticket', 1))
			INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata)
			VALUES ($3, $1, 'ticket', 1, $2, 'ticket.created', 1, $4::json, '{"actor":{"type":"system"},"channel":"system"}')`,
			stream, workspace, uuid.New(), data); err != nil {
			t.Fatal(err)
		}
		return stream
	}
	first := create(ws, `{"subject":"a","external_id":"crm-1"}`)
	create(ws, `{"subject":"b","external_id":"crm-1"}`)
	create(ws, `{"subject":"c"}`)
	theirs := create(other, `{"subject":"d","external_id":"crm-1"}`)
	if _, err := db.Pool().Exec(ctx, string(sql)); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool().Query(ctx, `SELECT workspace_id, stream_type, external_id, stream_id FROM external_ids`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[uuid.UUID]uuid.UUID{}
	for rows.Next() {
		var w, s uuid.UUID
		var typ, ext string
		if err := rows.Scan(&w, &typ, &ext, &s); err != nil {
			t.Fatal(err)
		}
		if typ != "ticket" || ext != "crm-1" {
			t.Errorf("indexed %s %q", typ, ext)
		}
		got[w] = s
	}
	if len(got) != 2 || got[ws] != first || got[other] != theirs {
		t.Errorf("indexed %v, want crm-1 as %s in %s and as %s in %s", got, first, ws, theirs, other)
	}
}

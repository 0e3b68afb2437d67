package pg_test

import (
	"context"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestMigration0018_ScrubsConnectionDetails runs the migration's statement
// again over details stored before it: only the public fields stay.
func TestMigration0018_ScrubsConnectionDetails(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	sql, err := os.ReadFile("migrations/0018_connection_details_public.sql")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{
		"slack":   `{"app_id": "A1", "id_token": "secret", "team": {"id": "T1", "name": "Acme", "icon": {"x": 1}}, "authed_user": {"id": "U1", "access_token": "secret"}, "incoming_webhook": {"url": "secret"}}`,
		"google":  `{"id_token": "secret", "email": "a@example.com"}`,
		"stripe":  `{"stripe_user_id": "acct_1", "livemode": true, "stripe_publishable_key": "secret"}`,
		"shopify": `{"associated_user_scope": "read", "associated_user": {"id": 7, "email": "o@shop.example", "session": "secret"}}`,
	}
	want := map[string]string{
		"slack":   `{"team": {"id": "T1", "name": "Acme"}, "app_id": "A1", "authed_user": {"id": "U1"}}`,
		"google":  `{}`,
		"stripe":  `{"livemode": true, "stripe_user_id": "acct_1"}`,
		"shopify": `{"associated_user": {"id": 7, "email": "o@shop.example"}, "associated_user_scope": "read"}`,
	}
	ids := map[string]uuid.UUID{}
	for provider, details := range rows {
		ids[provider] = uuid.New()
		if _, err := db.Pool().Exec(ctx, `INSERT INTO integration_connections (id, workspace_id, provider, status, details, created_at, updated_at)
			VALUES ($1, $2, $3, 'active', $4::jsonb, now(), now())`, ids[provider], uuid.New(), provider, details); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool().Exec(ctx, string(sql)); err != nil {
		t.Fatal(err)
	}
	for provider, id := range ids {
		var got string
		if err := db.Pool().QueryRow(ctx, `SELECT details::text FROM integration_connections WHERE id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want[provider] {
			t.Errorf("%s details = %s, want %s", provider, got, want[provider])
		}
	}
}

package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

func TestKeyCache_Authenticate(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	secret, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	cache := eventstore.NewKeyCache(s, time.Hour)

	// Unknown keys are never cached: a key created afterwards works at once.
	if _, err := cache.Authenticate(ctx, secret); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnauthorized {
		t.Fatalf("unknown key: %v, want unauthorized", err)
	}
	workspace := uuid.New()
	key := helpdeskflow.APIKey{ID: uuid.New(), WorkspaceID: workspace, Role: helpdeskflow.RoleAgent,
		Prefix: helpdeskflow.APIKeyDisplayPrefix(secret), CreatedAt: time.Now()}
	err = s.Transact(ctx, func(tx *eventstore.Tx) error {
		if err := tx.CreateWorkspace(ctx, workspace, "w"); err != nil {
			return err
		}
		return tx.CreateAPIKey(ctx, key, secret)
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := cache.Authenticate(ctx, secret)
	if err != nil || p.KeyID != key.ID || p.WorkspaceID != workspace || p.Role != helpdeskflow.RoleAgent {
		t.Fatalf("new key: %+v, %v", p, err)
	}

	// Served from memory within the TTL, from Postgres after Forget.
	if _, err := s.Pool().Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1`, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Authenticate(ctx, secret); err != nil {
		t.Fatalf("cached key: %v", err)
	}
	cache.Forget(secret)
	if _, err := cache.Authenticate(ctx, secret); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnauthorized {
		t.Fatalf("revoked key after Forget: %v, want unauthorized", err)
	}

	// An entry lives at most its TTL.
	short := eventstore.NewKeyCache(s, 50*time.Millisecond)
	if _, err := s.Pool().Exec(ctx, `UPDATE api_keys SET revoked_at = NULL WHERE id = $1`, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := short.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1`, key.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := short.Authenticate(ctx, secret); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnauthorized {
		t.Fatalf("revoked key after the TTL: %v, want unauthorized", err)
	}
}

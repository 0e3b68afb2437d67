package idempotency_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// newScope is a new API key's scope in a new workspace.
func newScope() helpdeskflow.IdempotencyScope {
	return helpdeskflow.IdempotencyScope{WorkspaceID: uuid.New(), APIKeyID: uuid.New()}
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestIdempotencyKeys(t *testing.T) {
	db := testenv.Postgres(t)
	keys := idempotency.New(db)
	ctx := context.Background()
	age := func(t *testing.T, workspace helpdeskflow.IdempotencyScope, key, by string) {
		t.Helper()
		if _, err := db.Pool().Exec(ctx, `UPDATE idempotency_keys SET created_at = created_at - $3::interval WHERE workspace_id = $1 AND api_key_id = $4 AND key = $2`,
			workspace.WorkspaceID, key, by, workspace.APIKeyID); err != nil {
			t.Fatal(err)
		}
	}
	begin := func(t *testing.T, workspace helpdeskflow.IdempotencyScope, key, request string) (helpdeskflow.IdempotencyClaim, error) {
		t.Helper()
		return keys.Begin(ctx, workspace, key, hashOf(request))
	}
	mustClaim := func(t *testing.T, workspace helpdeskflow.IdempotencyScope, key, request string) uuid.UUID {
		t.Helper()
		claim, err := begin(t, workspace, key, request)
		if err != nil || claim.Token == uuid.Nil || claim.Replay != nil {
			t.Fatalf("Begin = %+v, %v; want a claim", claim, err)
		}
		return claim.Token
	}
	wantCode := func(t *testing.T, err error, code string) {
		t.Helper()
		if got := helpdeskflow.ErrorCode(err); got != code {
			t.Fatalf("error %v has code %q, want %q", err, got, code)
		}
	}
	resp := helpdeskflow.IdempotentResponse{Status: 201, Header: map[string]string{"Content-Type": "application/json", "Location": "/v1/tickets/x"}, Body: []byte(`{"id":"x"}`)}

	t.Run("CompleteThenReplay", func(t *testing.T) {
		ws := newScope()
		token := mustClaim(t, ws, "k", "create")
		_, err := begin(t, ws, "k", "create")
		wantCode(t, err, helpdeskflow.EIdempotencyKeyInUse)
		_, err = begin(t, ws, "k", "other")
		wantCode(t, err, helpdeskflow.EIdempotencyKeyReused)
		if err := keys.Complete(ctx, ws, "k", token, resp); err != nil {
			t.Fatal(err)
		}
		claim, err := begin(t, ws, "k", "create")
		if err != nil || claim.Replay == nil || claim.Token != uuid.Nil {
			t.Fatalf("Begin = %+v, %v; want a replay", claim, err)
		}
		got := *claim.Replay
		if got.Status != resp.Status || !bytes.Equal(got.Body, resp.Body) || fmt.Sprint(got.Header) != fmt.Sprint(resp.Header) || got.Sealed {
			t.Fatalf("replay = %+v, want %+v", got, resp)
		}
		_, err = begin(t, ws, "k", "other")
		wantCode(t, err, helpdeskflow.EIdempotencyKeyReused)
		// Another workspace's key of the same name is another key, and so
		// is another API key's in the same workspace.
		mustClaim(t, newScope(), "k", "other")
		claim, err = begin(t, helpdeskflow.IdempotencyScope{WorkspaceID: ws.WorkspaceID, APIKeyID: uuid.New()}, "k", "create")
		if err != nil || claim.Token == uuid.Nil || claim.Replay != nil {
			t.Fatalf("the same key from another API key: Begin = %+v, %v; want a claim of its own, not a replay", claim, err)
		}
	})

	t.Run("AbandonFreesTheKey", func(t *testing.T) {
		ws := newScope()
		token := mustClaim(t, ws, "k", "create")
		if err := keys.Abandon(ctx, ws, "k", token); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, ws, "k", "other")
	})

	t.Run("ExpiredKeyIsNew", func(t *testing.T) {
		ws := newScope()
		token := mustClaim(t, ws, "k", "create")
		if err := keys.Complete(ctx, ws, "k", token, resp); err != nil {
			t.Fatal(err)
		}
		age(t, ws, "k", "24 hours 1 second")
		mustClaim(t, ws, "k", "other") // even another request
	})

	t.Run("AbandonedRunningKeyIsTakenOver", func(t *testing.T) {
		ws := newScope()
		first := mustClaim(t, ws, "k", "create")
		age(t, ws, "k", "61 seconds")
		// Only by the same request: another one may not reuse the key.
		_, err := begin(t, ws, "k", "other")
		wantCode(t, err, helpdeskflow.EIdempotencyKeyReused)
		second := mustClaim(t, ws, "k", "create")
		// The first claim is lost: it can neither complete nor free the key.
		wantCode(t, keys.Complete(ctx, ws, "k", first, resp), helpdeskflow.EIdempotencyKeyInUse)
		if err := keys.Abandon(ctx, ws, "k", first); err != nil {
			t.Fatal(err)
		}
		_, err = begin(t, ws, "k", "create")
		wantCode(t, err, helpdeskflow.EIdempotencyKeyInUse)
		if err := keys.Complete(ctx, ws, "k", second, resp); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ConcurrentBeginsClaimOnce", func(t *testing.T) {
		ws := newScope()
		var wg sync.WaitGroup
		var mu sync.Mutex
		claims, inUse := 0, 0
		for range 20 {
			wg.Go(func() {
				claim, err := keys.Begin(ctx, ws, "k", hashOf("create"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && claim.Token != uuid.Nil:
					claims++
				case helpdeskflow.ErrorCode(err) == helpdeskflow.EIdempotencyKeyInUse:
					inUse++
				default:
					t.Errorf("Begin = %+v, %v", claim, err)
				}
			})
		}
		wg.Wait()
		if claims != 1 || inUse != 19 {
			t.Fatalf("%d claims and %d in use, want 1 and 19", claims, inUse)
		}
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		ws := newScope()
		for i := range 5 {
			mustClaim(t, ws, fmt.Sprint("old", i), "create")
			age(t, ws, fmt.Sprint("old", i), "25 hours")
		}
		mustClaim(t, ws, "fresh", "create")
		n, err := keys.DeleteExpired(ctx, 3)
		if err != nil || n != 3 {
			t.Fatalf("DeleteExpired = %d, %v; want 3", n, err)
		}
		if n, err = keys.DeleteExpired(ctx, 100); err != nil || n != 2 {
			t.Fatalf("DeleteExpired = %d, %v; want 2", n, err)
		}
		var left int
		if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE workspace_id = $1`, ws.WorkspaceID).Scan(&left); err != nil || left != 1 {
			t.Fatalf("%d keys left (%v), want 1", left, err)
		}
	})

	t.Run("ClaimsDeleteExpiredKeys", func(t *testing.T) {
		ws := newScope()
		mustClaim(t, ws, "old", "create")
		age(t, ws, "old", "25 hours")
		// Every 50th claim of a process cleans up.
		for i := range 50 {
			mustClaim(t, ws, fmt.Sprint("new", i), "create")
		}
		var old int
		if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE workspace_id = $1 AND key = 'old'`, ws.WorkspaceID).Scan(&old); err != nil || old != 0 {
			t.Fatalf("the expired key is still there (%d, %v)", old, err)
		}
	})
}

// TestTx_Complete: a response completed in a transaction is kept only if
// that transaction commits; rolled back, the key stays running (a retry
// after the lease runs the request again), and a lost claim is an error
// the transaction must roll back on.
func TestTx_Complete(t *testing.T) {
	db := testenv.Postgres(t)
	keys := idempotency.New(db)
	ctx := context.Background()
	scope := newScope()
	resp := helpdeskflow.IdempotentResponse{Status: 200, Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"data":[]}`)}
	claim, err := keys.Begin(ctx, scope, "k", hashOf("batch"))
	if err != nil {
		t.Fatal(err)
	}
	held := helpdeskflow.HeldIdempotencyKey{Scope: scope, Key: "k", Token: claim.Token}
	rolledBack := fmt.Errorf("the command failed after completing")
	err = db.Transact(ctx, func(tx *pg.Tx) error {
		if err := idempotency.In(tx).Complete(ctx, held, resp); err != nil {
			return err
		}
		return rolledBack
	})
	if err != rolledBack {
		t.Fatalf("Transact = %v", err)
	}
	if _, err := keys.Begin(ctx, scope, "k", hashOf("batch")); helpdeskflow.ErrorCode(err) != helpdeskflow.EIdempotencyKeyInUse {
		t.Fatalf("after a rollback Begin = %v, want the key still running (%s)", err, helpdeskflow.EIdempotencyKeyInUse)
	}
	if err := db.Transact(ctx, func(tx *pg.Tx) error { return idempotency.In(tx).Complete(ctx, held, resp) }); err != nil {
		t.Fatal(err)
	}
	again, err := keys.Begin(ctx, scope, "k", hashOf("batch"))
	if err != nil || again.Replay == nil || !bytes.Equal(again.Replay.Body, resp.Body) || again.Replay.Status != 200 {
		t.Fatalf("after the commit Begin = %+v, %v; want the replay", again, err)
	}
	lost := helpdeskflow.HeldIdempotencyKey{Scope: scope, Key: "k", Token: uuid.New()}
	err = db.Transact(ctx, func(tx *pg.Tx) error { return idempotency.In(tx).Complete(ctx, lost, resp) })
	if helpdeskflow.ErrorCode(err) != helpdeskflow.EIdempotencyKeyInUse {
		t.Fatalf("a lost claim: %v, want %s", err, helpdeskflow.EIdempotencyKeyInUse)
	}
}

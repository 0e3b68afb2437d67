package access_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// newKey stores a new API key of a new workspace and returns it with its
// secret.
func newKey(t *testing.T, db *pg.DB) (helpdeskflow.APIKey, string) {
	t.Helper()
	ctx := context.Background()
	secret, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	key := helpdeskflow.APIKey{ID: uuid.New(), WorkspaceID: uuid.New(), Role: helpdeskflow.RoleAdmin,
		Prefix: helpdeskflow.APIKeyDisplayPrefix(secret), CreatedAt: time.Now()}
	err = db.Transact(ctx, func(ptx *pg.Tx) error {
		tx := access.In(ptx)
		if err := tx.CreateWorkspace(ctx, key.WorkspaceID, "w"); err != nil {
			return err
		}
		return tx.CreateAPIKey(ctx, key, secret)
	})
	if err != nil {
		t.Fatal(err)
	}
	return key, secret
}

// runCache starts an access cache (as one API process would) until t ends
// and waits until it trusts itself.
func runCache(t *testing.T, db *pg.DB, secret string) *access.Cache {
	t.Helper()
	c := access.NewCache(access.New(db), access.CacheConfig{HeartbeatInterval: 50 * time.Millisecond, TrustWindow: time.Second})
	testenv.Run(t, c.Run)
	// Serving from memory shows once a key revoked behind the cache's back
	// (no announcement) still authenticates.
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := c.Authenticate(context.Background(), secret)
		return err
	})
	return c
}

func revoke(t *testing.T, db *pg.DB, key helpdeskflow.APIKey) {
	t.Helper()
	ctx := context.Background()
	err := db.Transact(ctx, func(tx *pg.Tx) error {
		_, err := access.In(tx).RevokeAPIKey(ctx, key.WorkspaceID, key.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAccessCache_ServesFromMemoryWhileListening(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	key, secret := newKey(t, db)
	c := runCache(t, db, secret)
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, err := c.Authenticate(ctx, secret); err != nil {
			return err
		}
		// A revocation that bypasses the store (no announcement) is not
		// seen while the entry is cached: the answer came from memory.
		if _, err := db.Pool().Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1`, key.ID); err != nil {
			t.Fatal(err)
		}
		_, err := c.Authenticate(ctx, secret)
		if err != nil {
			db.Pool().Exec(ctx, `UPDATE api_keys SET revoked_at = NULL WHERE id = $1`, key.ID) //nolint:errcheck // retried
			return fmt.Errorf("not served from memory yet: %v", err)
		}
		return nil
	})
	// Last-used times reach Postgres with a heartbeat.
	testenv.Eventually(t, 10*time.Second, func() error {
		k, err := access.New(db).APIKey(ctx, key.ID)
		if err != nil {
			return err
		}
		if k.LastUsedAt == nil {
			return errors.New("last_used_at not written yet")
		}
		return nil
	})
}

func TestAccessCache_NotRunningMeansNoCaching(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	key, secret := newKey(t, db)
	c := access.NewCache(access.New(db), access.CacheConfig{})
	if _, err := c.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1`, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, secret); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnauthorized {
		t.Fatalf("revoked key with no listener: %v, want unauthorized", err)
	}
}

// TestAccessCache_RevocationIsImmediateEverywhere revokes keys while two
// caches (two API processes) are hammered with them: once the revoking
// transaction returns, neither cache ever accepts the key again, including
// lookups that were in flight during the revocation.
func TestAccessCache_RevocationIsImmediateEverywhere(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	for round := 0; round < 10; round++ {
		key, secret := newKey(t, db)
		caches := []*access.Cache{runCache(t, db, secret), runCache(t, db, secret)}
		var revoked atomic.Bool
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var accepted atomic.Int64
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := caches[i%2]
				for {
					select {
					case <-stop:
						return
					default:
					}
					wasRevoked := revoked.Load()
					_, err := c.Authenticate(ctx, secret)
					if err == nil && wasRevoked {
						accepted.Add(1)
					}
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		revoke(t, db, key)
		revoked.Store(true)
		time.Sleep(100 * time.Millisecond)
		close(stop)
		wg.Wait()
		if n := accepted.Load(); n != 0 {
			t.Fatalf("round %d: the key was accepted %d times after its revocation returned", round, n)
		}
	}
}

// TestAccessCache_WaitsForUnresponsiveProcesses: a member that neither
// confirms nor leaves holds a change back until its trust has run out, and
// no longer.
func TestAccessCache_WaitsForUnresponsiveProcesses(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	key, _ := newKey(t, db)
	var trustedUntil time.Time
	err := db.Pool().QueryRow(ctx, `INSERT INTO access_cache_members (process_id, generation, trusted_until)
		VALUES ($1, 0, now() + interval '700 milliseconds') RETURNING trusted_until`, uuid.New()).Scan(&trustedUntil)
	if err != nil {
		t.Fatal(err)
	}
	revoke(t, db, key)
	var now time.Time
	if err := db.Pool().QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	if now.Before(trustedUntil) {
		t.Errorf("the revocation returned at %s, before the unresponsive member's trust ended at %s", now, trustedUntil)
	}
}

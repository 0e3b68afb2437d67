// Package idempotency holds the Idempotency-Keys of API requests and the
// responses to replay (table idempotency_keys), per API key. The API's
// idempotency middleware claims a key before running a request and stores
// or gives up its outcome after.
package idempotency

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// Retention is how long the outcome of a request made with an
// Idempotency-Key is kept. A key older than this is forgotten: the next
// request with it runs as a new one.
const Retention = 24 * time.Hour

// Lease is how long a request may run while holding its key. A
// key still running after this is taken to be abandoned (its process died)
// and the same request may take it over. The HTTP server's write timeout
// (30 s) is well below it.
const Lease = 60 * time.Second

// Expired keys are deleted as new keys arrive: every cleanupEvery
// claims in a process, in the same round trip as the claim, at most
// cleanupBatch of the oldest expired rows. That deletes keys
// several times faster than they can arrive, so the table stays about one
// retention period's worth of keys without a background job.
const (
	cleanupEvery = 50
	cleanupBatch = 500
)

// Keys stores, per API key, the Idempotency-Keys of requests
// and the responses to replay (table idempotency_keys). It is safe for
// concurrent use; every process may claim keys in the same database.
type Keys struct {
	pool   *pgxpool.Pool
	claims atomic.Uint64
}

// New returns the idempotency keys kept in db.
func New(db *pg.DB) *Keys {
	return &Keys{pool: db.Pool()}
}

// Begin claims key in scope (the API key that sent it) for a request whose identity (method, path,
// body and whatever else distinguishes it) hashes to requestHash. It costs
// one round trip. It returns a claim with a Token when the caller must run
// the request: the key is new, older than Retention, or held by
// the same request for longer than Lease (abandoned). The caller
// then calls Complete or Abandon with that token. It returns a claim with
// Replay when the same request already completed with this key.
//
// Errors: EIdempotencyKeyReused when the key was used by a request with
// another hash, EIdempotencyKeyInUse while the first request with the key
// is still running, EUnavailable when Postgres cannot be reached.
func (k *Keys) Begin(ctx context.Context, scope helpdeskflow.IdempotencyScope, key string, requestHash []byte) (helpdeskflow.IdempotencyClaim, error) {
	// The row found on conflict can vanish before it is read (its request
	// failed and gave the key up); the next attempt then claims the key.
	for range 3 {
		claim, found, err := k.begin(ctx, scope, key, requestHash)
		if err != nil || found {
			return claim, err
		}
	}
	return helpdeskflow.IdempotencyClaim{}, helpdeskflow.Errorf(helpdeskflow.EUnavailable,
		"Idempotency-Key %q is changing hands too quickly; retry", key)
}

func (k *Keys) begin(ctx context.Context, scope helpdeskflow.IdempotencyScope, key string, requestHash []byte) (helpdeskflow.IdempotencyClaim, bool, error) {
	token := uuid.New()
	b := &pgx.Batch{}
	cleanup := k.claims.Add(1)%cleanupEvery == 0
	if cleanup {
		b.Queue(deleteExpiredIdempotencyKeys, Retention.Seconds(), cleanupBatch)
	}
	// A conflicting row is replaced when it has expired, or when it is the
	// same request's and its lease ran out; otherwise it is left alone and
	// read by the next statement.
	b.Queue(`INSERT INTO idempotency_keys (workspace_id, api_key_id, key, request_hash, state, lease_token) VALUES ($1, $7, $2, $3, 'running', $4)
		ON CONFLICT (workspace_id, api_key_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, state = 'running',
			lease_token = EXCLUDED.lease_token, status = NULL, response_headers = NULL, response_body = NULL,
			sealed = false, created_at = now(), completed_at = NULL
		WHERE idempotency_keys.created_at < now() - make_interval(secs => $5)
		   OR (idempotency_keys.state = 'running' AND idempotency_keys.request_hash = EXCLUDED.request_hash
		       AND idempotency_keys.created_at < now() - make_interval(secs => $6))
		RETURNING lease_token`,
		scope.WorkspaceID, key, requestHash, token, Retention.Seconds(), Lease.Seconds(), scope.APIKeyID)
	b.Queue(`SELECT request_hash, state, coalesce(status, 0), coalesce(response_headers, '{}')::text,
			coalesce(response_body, ''), sealed
		FROM idempotency_keys WHERE workspace_id = $1 AND api_key_id = $3 AND key = $2`, scope.WorkspaceID, key, scope.APIKeyID)
	br := k.pool.SendBatch(ctx, b)
	defer br.Close()

	if cleanup {
		if _, err := br.Exec(); err != nil {
			return helpdeskflow.IdempotencyClaim{}, false, pg.Internal("delete expired idempotency keys", err)
		}
	}
	var claimed uuid.UUID
	err := br.QueryRow().Scan(&claimed)
	switch {
	case err == nil:
		return helpdeskflow.IdempotencyClaim{Token: claimed}, true, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return helpdeskflow.IdempotencyClaim{}, false, pg.Internal("claim idempotency key", err)
	}

	var (
		hash, body []byte
		state      string
		status     int32
		headers    string
		sealed     bool
	)
	err = br.QueryRow().Scan(&hash, &state, &status, &headers, &body, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return helpdeskflow.IdempotencyClaim{}, false, nil
	}
	if err != nil {
		return helpdeskflow.IdempotencyClaim{}, false, pg.Internal("read idempotency key", err)
	}
	switch {
	case !bytes.Equal(hash, requestHash):
		return helpdeskflow.IdempotencyClaim{}, true, helpdeskflow.Errorf(helpdeskflow.EIdempotencyKeyReused,
			"Idempotency-Key %q was already used for a different request (method, path, If-Match or body) in the last %d hours; use a new key for a new request",
			key, int(Retention/time.Hour))
	case state == "running":
		return helpdeskflow.IdempotencyClaim{}, true, helpdeskflow.Errorf(helpdeskflow.EIdempotencyKeyInUse,
			"the first request with Idempotency-Key %q is still running; retry once it has finished", key)
	}
	resp := &helpdeskflow.IdempotentResponse{Status: int(status), Body: body, Sealed: sealed}
	if err := json.Unmarshal([]byte(headers), &resp.Header); err != nil {
		return helpdeskflow.IdempotencyClaim{}, false, pg.Internal("decode idempotent response headers", err)
	}
	return helpdeskflow.IdempotencyClaim{Replay: resp}, true, nil
}

// Complete stores resp as the outcome of key's request, to be replayed to
// every retry until Retention has passed. token is the claim's,
// from Begin. It returns EIdempotencyKeyInUse when the claim was lost (it
// outlived Lease and a retry took the key over; that retry's
// outcome is the one kept) and EUnavailable when Postgres cannot be
// reached.
func (k *Keys) Complete(ctx context.Context, scope helpdeskflow.IdempotencyScope, key string, token uuid.UUID, resp helpdeskflow.IdempotentResponse) error {
	return complete(ctx, k.pool, helpdeskflow.HeldIdempotencyKey{Scope: scope, Key: key, Token: token}, resp)
}

// Tx is the idempotency room's view of one transaction: a command that
// keeps its response with the transaction it commits (see Tx.Complete).
type Tx struct {
	tx *pg.Tx
}

// In returns the idempotency room's view of tx.
func In(tx *pg.Tx) *Tx { return &Tx{tx: tx} }

// Complete stores resp as the outcome of the held key's request in this
// transaction, so the response is kept exactly when what the request
// changed commits: a retry after a crash before the commit runs the
// request again, one after it replays resp. It costs one round trip (with
// the statements deferred before it). Errors as Keys.Complete: with
// EIdempotencyKeyInUse (the claim was lost to a takeover, which does the
// work instead) the caller must roll back.
func (t *Tx) Complete(ctx context.Context, held helpdeskflow.HeldIdempotencyKey, resp helpdeskflow.IdempotentResponse) error {
	return complete(ctx, t.tx, held, resp)
}

// execer runs one statement: a pool or a *pg.Tx.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func complete(ctx context.Context, db execer, held helpdeskflow.HeldIdempotencyKey, resp helpdeskflow.IdempotentResponse) error {
	header := resp.Header
	if header == nil {
		header = map[string]string{}
	}
	headers, err := json.Marshal(header)
	if err != nil {
		return pg.Internal("encode idempotent response headers", err)
	}
	body := resp.Body
	if body == nil {
		body = []byte{}
	}
	tag, err := db.Exec(ctx, `UPDATE idempotency_keys SET state = 'done', status = $4, response_headers = $5,
			response_body = $6, sealed = $7, completed_at = now()
		WHERE workspace_id = $1 AND api_key_id = $8 AND key = $2 AND lease_token = $3 AND state = 'running'`,
		held.Scope.WorkspaceID, held.Key, held.Token, resp.Status, string(headers), body, resp.Sealed, held.Scope.APIKeyID)
	if err != nil {
		var translated *helpdeskflow.Error
		if errors.As(err, &translated) {
			return err // a deferred statement's error (see pg.Tx.Defer)
		}
		return pg.Internal("complete idempotency key", err)
	}
	if tag.RowsAffected() == 0 {
		return helpdeskflow.Errorf(helpdeskflow.EIdempotencyKeyInUse,
			"the claim on Idempotency-Key %q was lost: the request outlived its lease and a retry took the key over", held.Key)
	}
	return nil
}

// Abandon gives key up, so that a retry of the request runs it again: for
// outcomes that are not final (a conflict, a rate limit, a server error).
// token is the claim's, from Begin; a claim already lost is left alone.
// It returns EUnavailable when Postgres cannot be reached.
func (k *Keys) Abandon(ctx context.Context, scope helpdeskflow.IdempotencyScope, key string, token uuid.UUID) error {
	if _, err := k.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE workspace_id = $1 AND api_key_id = $4 AND key = $2 AND lease_token = $3 AND state = 'running'`,
		scope.WorkspaceID, key, token, scope.APIKeyID); err != nil {
		return pg.Internal("abandon idempotency key", err)
	}
	return nil
}

// DeleteExpired deletes up to limit of the oldest keys older than
// Retention, in every workspace, and returns how many it
// deleted. Begin already calls it now and then (see cleanupEvery);
// it is exported for operators and tests. Rows locked by a concurrent
// claim are skipped. It returns EUnavailable when Postgres cannot be
// reached.
func (k *Keys) DeleteExpired(ctx context.Context, limit int) (int64, error) {
	tag, err := k.pool.Exec(ctx, deleteExpiredIdempotencyKeys, Retention.Seconds(), limit)
	if err != nil {
		return 0, pg.Internal("delete expired idempotency keys", err)
	}
	return tag.RowsAffected(), nil
}

// The batch is a CTE, run once: as an IN (subquery) a plan may run the
// subquery again per row and delete more than the limit.
const deleteExpiredIdempotencyKeys = `WITH batch AS (
		SELECT workspace_id, api_key_id, key FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)
		ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
	DELETE FROM idempotency_keys k USING batch
	WHERE k.workspace_id = batch.workspace_id AND k.api_key_id = batch.api_key_id AND k.key = batch.key`

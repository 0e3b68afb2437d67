package connections

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// ClaimMailboxes leases up to limit active connections of the providers
// whose sync is due at now (never synced, or next_sync_at passed) and that
// no live lease holds, until leaseUntil. The lease is the claim's token:
// FinishMailboxSync and SaveSyncState only write while it is the
// connection's lease, so a process whose lease ran out (and another took
// over) changes nothing; runs do not extend their lease. Leases are kept
// to the microsecond, as Postgres keeps them.
func (s *Store) ClaimMailboxes(ctx context.Context, providers []string, now, leaseUntil time.Time, limit int) ([]helpdeskflow.Connection, error) {
	leaseUntil = leaseUntil.Truncate(time.Microsecond)
	rows, err := s.pool.Query(ctx, `UPDATE integration_connections SET sync_lease_until = $3
		WHERE id IN (SELECT id FROM integration_connections
			WHERE status = 'active' AND provider = ANY($1) AND coalesce(next_sync_at, '-infinity') <= $2
				AND coalesce(sync_lease_until, '-infinity') < $2
			ORDER BY next_sync_at NULLS FIRST LIMIT $4 FOR UPDATE SKIP LOCKED)
		RETURNING `+connectionColumns, providers, now, leaseUntil, limit)
	if err != nil {
		return nil, pg.Internal("claim mailboxes", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.Connection, error) { return scanConnection(r) })
	if err != nil {
		return nil, pg.Internal("claim mailboxes", err)
	}
	return out, nil
}

// SaveSyncState stores a sync run's cursor part-way through the run (state
// nil stores nothing), while lease is still the connection's lease; false
// when it is not (another run took over: this one must stop). It does not
// move the lease: a run's deadline is shorter than its lease.
func (s *Store) SaveSyncState(ctx context.Context, id uuid.UUID, lease time.Time, state []byte) (bool, error) {
	lease = lease.Truncate(time.Microsecond)
	tag, err := s.pool.Exec(ctx, `UPDATE integration_connections SET sync_state = coalesce($3, sync_state)
		WHERE id = $1 AND sync_lease_until = $2`, id, lease, state)
	if err != nil {
		return false, pg.Internal("save a sync cursor", err)
	}
	return tag.RowsAffected() == 1, nil
}

// FinishMailboxSync records a sync run's outcome and ends its lease, if
// the lease is still the claim's. It returns the connection's failure
// count after the run (0 after a good or partial one) and false when the
// lease was lost. A partial run clears the last error but leaves
// last_sync_at, as it did not read everything.
func (s *Store) FinishMailboxSync(ctx context.Context, id uuid.UUID, lease time.Time, o helpdeskflow.SyncOutcome) (int, bool, error) {
	lease = lease.Truncate(time.Microsecond)
	var failures int
	err := s.pool.QueryRow(ctx, `UPDATE integration_connections SET
			sync_state = coalesce($3, sync_state), next_sync_at = $4, sync_lease_until = NULL,
			last_sync_at = CASE WHEN $6 = '' AND NOT $8 THEN $5 ELSE last_sync_at END,
			sync_failures = CASE WHEN $6 = '' THEN 0 ELSE sync_failures + 1 END,
			last_error_class = $6, last_error = $7,
			last_error_at = CASE WHEN $6 = '' THEN last_error_at ELSE $5 END, updated_at = $5
		WHERE id = $1 AND sync_lease_until = $2 RETURNING sync_failures`,
		id, lease, o.State, o.NextSyncAt, o.At, o.ErrorClass, o.Error, o.Partial).Scan(&failures)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, pg.Internal("finish a mailbox sync", err)
	}
	return failures, true, nil
}

// SyncNow makes a connection's mailbox due at now (after a reconnect, or
// when an admin asks).
func (s *Store) SyncNow(ctx context.Context, workspaceID, id uuid.UUID, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE integration_connections SET next_sync_at = $3 WHERE id = $1 AND workspace_id = $2`, id, workspaceID, now); err != nil {
		return pg.Internal("schedule a mailbox sync", err)
	}
	return nil
}

// ConnectionCounts counts connections by provider and status, for the
// connections-by-status gauge.
func (s *Store) ConnectionCounts(ctx context.Context) (map[[2]string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT provider, status, count(*) FROM integration_connections GROUP BY provider, status`)
	if err != nil {
		return nil, pg.Internal("count connections", err)
	}
	defer rows.Close()
	out := map[[2]string]int{}
	for rows.Next() {
		var provider, status string
		var n int
		if err := rows.Scan(&provider, &status, &n); err != nil {
			return nil, pg.Internal("count connections", err)
		}
		out[[2]string{provider, status}] = n
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("count connections", err)
	}
	return out, nil
}

package queues

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// DueSLATimers returns up to limit tickets whose SLA timer is due at now,
// the most overdue first, as ticket stream references.
func (s *Store) DueSLATimers(ctx context.Context, now time.Time, limit int) ([]helpdeskflow.StreamRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT ticket_id, workspace_id FROM sla_timers WHERE due_at <= $1 ORDER BY due_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, pg.Internal("read due SLA timers", err)
	}
	refs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (helpdeskflow.StreamRef, error) {
		ref := helpdeskflow.StreamRef{Type: helpdeskflow.StreamTicket}
		err := row.Scan(&ref.ID, &ref.WorkspaceID)
		return ref, err
	})
	if err != nil {
		return nil, pg.Internal("read due SLA timers", err)
	}
	return refs, nil
}

// ScheduleSLA records when the SLA timer worker must next look at ticket
// (dueAt nil: only after the ticket changes), under SLA policy policyID.
// Sent with the transaction's next statement or its commit.
func (t *Tx) ScheduleSLA(ctx context.Context, workspaceID, ticketID, policyID uuid.UUID, dueAt *time.Time) {
	t.tx.Defer(`INSERT INTO sla_timers (ticket_id, workspace_id, policy_id, due_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (ticket_id) DO UPDATE SET policy_id = excluded.policy_id, due_at = excluded.due_at`,
		ticketID, workspaceID, policyID, dueAt)
}

// UnscheduleSLA forgets ticket's SLA timer: it has no SLA any more, or it
// is closed. Sent with the next statement or the commit.
func (t *Tx) UnscheduleSLA(ctx context.Context, ticketID uuid.UUID) {
	t.tx.Defer(`DELETE FROM sla_timers WHERE ticket_id = $1`, ticketID)
}

// RecheckSLAPolicy makes every ticket under SLA policy policyID due at
// now, so that the worker re-evaluates it after the policy changed. Sent
// with the next statement or the commit.
func (t *Tx) RecheckSLAPolicy(ctx context.Context, workspaceID, policyID uuid.UUID, now time.Time) {
	t.tx.Defer(`UPDATE sla_timers SET due_at = $3 WHERE workspace_id = $1 AND policy_id = $2`, workspaceID, policyID, now)
}

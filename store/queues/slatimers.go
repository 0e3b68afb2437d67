package queues

import (
	"context"
	"time"

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

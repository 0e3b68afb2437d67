package lookups

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// ClaimExternalID makes stream id (a ticket or a customer, by streamType)
// the holder of an integrator's external id in workspace, unless another
// stream of that type holds it already. It returns the holder: id when the
// claim is new (or id held it already). A concurrent transaction claiming
// the same external id makes this one wait for it to end (the table's
// primary key), so exactly one stream ever holds it. It costs one round
// trip.
func (t *Tx) ClaimExternalID(ctx context.Context, workspaceID uuid.UUID, streamType, externalID string, id uuid.UUID) (uuid.UUID, error) {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO external_ids (workspace_id, stream_type, external_id, stream_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, workspaceID, streamType, externalID, id)
	// A separate statement takes a new snapshot, so it also sees a holder
	// whose transaction committed while the insert above waited for it.
	b.Queue(`SELECT stream_id FROM external_ids WHERE workspace_id = $1 AND stream_type = $2 AND external_id = $3`,
		workspaceID, streamType, externalID)
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return uuid.Nil, pg.Internal("claim external id", err)
	}
	var holder uuid.UUID
	if err := br.QueryRow().Scan(&holder); err != nil {
		return uuid.Nil, pg.Internal("claim external id", err)
	}
	return holder, nil
}

// ByExternalID returns the stream of streamType holding the external id in
// workspace; ENotFound when none does.
func (s *Store) ByExternalID(ctx context.Context, workspaceID uuid.UUID, streamType, externalID string) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT stream_id FROM external_ids WHERE workspace_id = $1 AND stream_type = $2 AND external_id = $3`,
		workspaceID, streamType, externalID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "no %s has external id %q", streamType, externalID)
	}
	if err != nil {
		return uuid.Nil, pg.Internal("find by external id", err)
	}
	return id, nil
}

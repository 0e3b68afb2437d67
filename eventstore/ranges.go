package eventstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// LastPosition returns the position of the workspace's last event below
// the commit horizon (see ReadAfter): every event a reader can see now is
// at or before it, and none committed later is. The zero Position when
// the workspace has none. Errors are EInternal.
func (s *Store) LastPosition(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.Position, error) {
	var p helpdeskflow.Position
	var tx int64
	err := s.pool.QueryRow(ctx, `SELECT tx_id::text::bigint, seq FROM events
		WHERE workspace_id = $1 AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY workspace_id DESC, tx_id DESC, seq DESC LIMIT 1`, workspaceID).Scan(&tx, &p.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return helpdeskflow.Position{}, nil
	}
	if err != nil {
		return p, pg.Internal("read the last event position", err)
	}
	p.TxID = uint64(tx)
	return p, nil
}

// rangeWhere is the condition of an EventRange on the events table, its
// arguments from $1: workspace, after (tx, seq), upto (tx, seq), from,
// to, types. Internal notes are left out.
const rangeWhere = `workspace_id = $1
	AND (tx_id, seq) > ($2::text::xid8, $3) AND (tx_id, seq) <= ($4::text::xid8, $5)
	AND ($6::timestamptz IS NULL OR occurred_at >= $6) AND ($7::timestamptz IS NULL OR occurred_at < $7)
	AND ($8::text[] IS NULL OR type = ANY($8))
	AND NOT (type = 'ticket.message_added' AND coalesce(data->>'internal', '') = 'true')`

func rangeArgs(r helpdeskflow.EventRange, after helpdeskflow.Position) []any {
	return []any{r.WorkspaceID, strconv.FormatUint(after.TxID, 10), after.Seq, strconv.FormatUint(r.Upto.TxID, 10), r.Upto.Seq,
		r.From, r.To, r.Types}
}

// CountRange counts the events of r, at most max (it stops counting
// there, so a range too large for its purpose costs at most max rows).
// Errors are EInternal.
func (s *Store) CountRange(ctx context.Context, r helpdeskflow.EventRange, max int) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM events WHERE `+rangeWhere+` LIMIT $9) r`,
		append(rangeArgs(r, r.After), max)...).Scan(&n)
	if err != nil {
		return 0, pg.Internal("count the events of a range", err)
	}
	return n, nil
}

// ReadRange returns up to limit events of r that come after position
// after (r.After or a later position a previous page ended at), in commit
// order. A range's upper end is below the commit horizon when it is made
// (LastPosition), so paging through it skips nothing. Errors are
// EInternal.
func (s *Store) ReadRange(ctx context.Context, r helpdeskflow.EventRange, after helpdeskflow.Position, limit int) ([]helpdeskflow.Event, error) {
	if after.Less(r.After) {
		after = r.After
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE `+rangeWhere+`
		ORDER BY events.workspace_id, events.tx_id, events.seq LIMIT $9`, append(rangeArgs(r, after), limit)...)
	if err != nil {
		return nil, pg.Internal("read the events of a range", err)
	}
	return scanEvents(rows)
}

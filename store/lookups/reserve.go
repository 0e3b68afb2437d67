package lookups

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// ReserveCustomerEmail makes candidate the customer of the normalized email
// in workspace, unless another customer already holds it. It returns the
// customer id that holds the email, whether the reservation is new (so the
// caller must create that customer's stream in this transaction), and,
// when the holder already existed, its stream from its snapshot (see
// eventstore.Tx.LoadTail: the batch sends eventstore.TailSQL). A concurrent transaction reserving the same email makes this
// one wait for it to end, so exactly one customer is ever created per
// email. It costs one round trip.
func (t *Tx) ReserveCustomerEmail(ctx context.Context, workspaceID uuid.UUID, email string, candidate uuid.UUID) (uuid.UUID, bool, helpdeskflow.StreamTail, error) {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO customer_emails (workspace_id, email, customer_id) VALUES ($1, $2, $3)
		ON CONFLICT (workspace_id, email) DO NOTHING RETURNING customer_id`, workspaceID, email, candidate)
	// A separate statement takes a new snapshot, so it also sees a holder
	// whose transaction committed while the insert above waited for it.
	b.Queue(eventstore.TailSQL(`(SELECT customer_id FROM customer_emails WHERE workspace_id = $1 AND email = $2)`, "$3"),
		workspaceID, email, helpdeskflow.SnapshotFormat)
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()

	var holder uuid.UUID
	err := br.QueryRow().Scan(&holder)
	created := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, helpdeskflow.StreamTail{}, pg.Internal("reserve customer email", err)
	}
	rows, err := br.Query()
	if err != nil {
		return uuid.Nil, false, helpdeskflow.StreamTail{}, pg.Internal("load customer", err)
	}
	history, err := eventstore.ScanTail(rows)
	if err != nil {
		return uuid.Nil, false, helpdeskflow.StreamTail{}, err
	}
	if created {
		return holder, true, helpdeskflow.StreamTail{}, nil
	}
	if history.StreamID() == uuid.Nil {
		return uuid.Nil, false, helpdeskflow.StreamTail{}, &helpdeskflow.Error{Code: helpdeskflow.EInternal,
			Message: fmt.Sprintf("customer email %q is reserved but its customer has no events", email)}
	}
	return history.StreamID(), false, history, nil
}

// CustomersHolding returns, for each normalized email of emails that a
// customer of workspace holds, that customer's stream from its snapshot
// (its id is the tail's StreamID), as ReserveCustomerEmail returns an
// existing holder; emails nobody holds are absent. It reserves and locks
// nothing, and costs one round trip for all of them: a batch of creates
// reads its known customers at once instead of one round trip per item.
func (t *Tx) CustomersHolding(ctx context.Context, workspaceID uuid.UUID, emails []string) (map[string]helpdeskflow.StreamTail, error) {
	out := map[string]helpdeskflow.StreamTail{}
	if len(emails) == 0 {
		return out, nil
	}
	b := &pgx.Batch{}
	for _, email := range emails {
		b.Queue(eventstore.TailSQL(`(SELECT customer_id FROM customer_emails WHERE workspace_id = $1 AND email = $2)`, "$3"),
			workspaceID, email, helpdeskflow.SnapshotFormat)
	}
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()
	for _, email := range emails {
		rows, err := br.Query()
		if err != nil {
			return nil, pg.Internal("load customers", err)
		}
		history, err := eventstore.ScanTail(rows)
		if err != nil {
			return nil, err
		}
		if history.StreamID() != uuid.Nil {
			out[email] = history
		}
	}
	return out, nil
}

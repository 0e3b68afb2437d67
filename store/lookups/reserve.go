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
	b.Queue(holderTailSQL,
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

// ReserveCustomerEmails is ReserveCustomerEmail for many normalized
// emails of workspace at once, in one round trip: each email nobody holds
// is reserved for its candidate (candidates[i] for emails[i]; reserved),
// and for each email a customer already holds that customer's stream is
// read from its snapshot (existing; its id is the tail's StreamID). Rows
// are reserved in the order of emails, so callers that sort them take the
// reservations in one order and cannot deadlock. An email in neither map
// is one whose holder has no stream yet (as ReserveCustomerEmail, which
// then fails). A reservation whose customer is not created in the end must
// be given back with ReleaseCustomerEmails.
func (t *Tx) ReserveCustomerEmails(ctx context.Context, workspaceID uuid.UUID, emails []string, candidates []uuid.UUID) (
	reserved map[string]uuid.UUID, existing map[string]helpdeskflow.StreamTail, err error) {
	reserved, existing = map[string]uuid.UUID{}, map[string]helpdeskflow.StreamTail{}
	if len(emails) == 0 {
		return reserved, existing, nil
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO customer_emails (workspace_id, email, customer_id)
		SELECT $1, u.email, u.candidate FROM unnest($2::text[], $3::uuid[]) WITH ORDINALITY AS u(email, candidate, n) ORDER BY u.n
		ON CONFLICT (workspace_id, email) DO NOTHING RETURNING email, customer_id`, workspaceID, emails, candidates)
	// Separate statements take new snapshots, so they also see holders
	// whose transactions committed while the insert waited for them.
	for _, email := range emails {
		b.Queue(holderTailSQL,
			workspaceID, email, helpdeskflow.SnapshotFormat)
	}
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, nil, pg.Internal("reserve customer emails", err)
	}
	for rows.Next() {
		var email string
		var holder uuid.UUID
		if err := rows.Scan(&email, &holder); err != nil {
			rows.Close()
			return nil, nil, pg.Internal("reserve customer emails", err)
		}
		reserved[email] = holder
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, pg.Internal("reserve customer emails", err)
	}
	for _, email := range emails {
		rows, err := br.Query()
		if err != nil {
			return nil, nil, pg.Internal("load customers", err)
		}
		history, err := eventstore.ScanTail(rows)
		if err != nil {
			return nil, nil, err
		}
		if _, mine := reserved[email]; !mine && history.StreamID() != uuid.Nil {
			existing[email] = history
		}
	}
	return reserved, existing, nil
}

// ReleaseCustomerEmails gives back reservations that ReserveCustomerEmails
// made for customers that were not created after all (emails[i] held by
// holders[i]). It is sent with the transaction's next statement or its
// commit.
func (t *Tx) ReleaseCustomerEmails(ctx context.Context, workspaceID uuid.UUID, emails []string, holders []uuid.UUID) {
	if len(emails) == 0 {
		return
	}
	t.tx.Defer(`DELETE FROM customer_emails WHERE workspace_id = $1
		AND (email, customer_id) IN (SELECT * FROM unnest($2::text[], $3::uuid[]))`, workspaceID, emails, holders)
}

// holderTailSQL loads the stream of the customer holding email $2 of
// workspace $1 from its snapshot of format $3 (see eventstore.TailSQL).
var holderTailSQL = eventstore.TailSQL(`(SELECT customer_id FROM customer_emails WHERE workspace_id = $1 AND email = $2)`, "$3")

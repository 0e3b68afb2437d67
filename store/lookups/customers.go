package lookups

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// LinkTicket records that ticket belongs to customer. It is sent with the
// transaction's next statement or its commit.
func (t *Tx) LinkTicket(ctx context.Context, workspaceID, customerID, ticketID uuid.UUID) {
	t.tx.Defer(`INSERT INTO customer_tickets (workspace_id, customer_id, ticket_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		workspaceID, customerID, ticketID)
}

// CustomersTickets returns the ticket ids of each of customers, oldest
// first (as Store.CustomerTickets orders them), as the transaction sees
// them; a customer without tickets is absent. One statement for all.
func (t *Tx) CustomersTickets(ctx context.Context, customers []uuid.UUID) (map[uuid.UUID][]uuid.UUID, error) {
	out := map[uuid.UUID][]uuid.UUID{}
	if len(customers) == 0 {
		return out, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT ct.customer_id, ct.ticket_id FROM customer_tickets ct JOIN streams s ON s.id = ct.ticket_id
		WHERE ct.customer_id = ANY($1) ORDER BY ct.customer_id, s.created_at, ct.ticket_id`, customers)
	if err != nil {
		return nil, pg.Internal("read customer tickets", err)
	}
	defer rows.Close()
	for rows.Next() {
		var customer, ticket uuid.UUID
		if err := rows.Scan(&customer, &ticket); err != nil {
			return nil, pg.Internal("read customer tickets", err)
		}
		out[customer] = append(out[customer], ticket)
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("read customer tickets", err)
	}
	return out, nil
}

// MoveTickets moves every ticket of customer from to customer to and
// returns the moved ticket ids.
func (t *Tx) MoveTickets(ctx context.Context, from, to uuid.UUID) ([]uuid.UUID, error) {
	rows, err := t.tx.Query(ctx, `UPDATE customer_tickets SET customer_id = $2 WHERE customer_id = $1 RETURNING ticket_id`, from, to)
	if err != nil {
		return nil, pg.Internal("move customer tickets", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, pg.Internal("move customer tickets", err)
	}
	return ids, nil
}

// ClaimProfiles makes customer the holder of each linked profile that no
// other customer of the workspace holds. It returns EConflict naming the
// first profile another customer holds.
func (t *Tx) ClaimProfiles(ctx context.Context, workspaceID, customerID uuid.UUID, profiles []helpdeskflow.LinkedProfile) error {
	if len(profiles) == 0 {
		return nil
	}
	providers := make([]string, len(profiles))
	externalIDs := make([]string, len(profiles))
	for i, p := range profiles {
		providers[i], externalIDs[i] = p.Provider, p.ExternalID
	}
	rows, err := t.tx.Query(ctx, `INSERT INTO customer_profiles (workspace_id, provider, external_id, customer_id)
		SELECT $1, p, e, $2 FROM unnest($3::text[], $4::text[]) AS u(p, e)
		ON CONFLICT (workspace_id, provider, external_id) DO UPDATE SET customer_id = customer_profiles.customer_id
		RETURNING provider, external_id, customer_id`, workspaceID, customerID, providers, externalIDs)
	if err != nil {
		return pg.Internal("claim linked profiles", err)
	}
	defer rows.Close()
	for rows.Next() {
		var provider, externalID string
		var holder uuid.UUID
		if err := rows.Scan(&provider, &externalID, &holder); err != nil {
			return pg.Internal("claim linked profiles", err)
		}
		if holder != customerID {
			return helpdeskflow.Errorf(helpdeskflow.EConflict, "the %s profile %q is already linked to customer %s", provider, externalID, holder)
		}
	}
	if err := rows.Err(); err != nil {
		return pg.Internal("claim linked profiles", err)
	}
	return nil
}

// MoveCustomerLookups points everything that names customer from (its
// emails, linked profiles and external id) at customer to, for a merge.
func (t *Tx) MoveCustomerLookups(ctx context.Context, from, to uuid.UUID) {
	t.tx.Defer(`UPDATE customer_emails SET customer_id = $2 WHERE customer_id = $1`, from, to)
	t.tx.Defer(`UPDATE customer_profiles SET customer_id = $2 WHERE customer_id = $1`, from, to)
	t.tx.Defer(`UPDATE external_ids SET stream_id = $2 WHERE stream_id = $1`, from, to)
}

// ChangeCustomerEmail moves customer's email reservation from old to new.
// It returns EConflict when another customer holds new (the caller merges
// instead), reporting that customer's id.
func (t *Tx) ChangeCustomerEmail(ctx context.Context, workspaceID, customerID uuid.UUID, old, new string) (uuid.UUID, error) {
	var holder uuid.UUID
	err := t.tx.QueryRow(ctx, `INSERT INTO customer_emails (workspace_id, email, customer_id) VALUES ($1, $2, $3)
		ON CONFLICT (workspace_id, email) DO UPDATE SET customer_id = customer_emails.customer_id RETURNING customer_id`,
		workspaceID, new, customerID).Scan(&holder)
	if err != nil {
		return uuid.Nil, pg.Internal("reserve customer email", err)
	}
	if holder != customerID {
		return holder, helpdeskflow.Errorf(helpdeskflow.EConflict, "customer %s already has email %s", holder, new)
	}
	t.tx.Defer(`DELETE FROM customer_emails WHERE workspace_id = $1 AND email = $2 AND customer_id = $3`, workspaceID, old, customerID)
	return customerID, nil
}

// CustomerTickets returns the ids of customer's tickets, oldest first.
func (s *Store) CustomerTickets(ctx context.Context, customerID uuid.UUID) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT ct.ticket_id FROM customer_tickets ct JOIN streams s ON s.id = ct.ticket_id
		WHERE ct.customer_id = $1 ORDER BY s.created_at, ct.ticket_id`, customerID)
	if err != nil {
		return nil, pg.Internal("read customer tickets", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, pg.Internal("read customer tickets", err)
	}
	return ids, nil
}

// CustomerByEmail returns the customer holding the normalized email;
// ENotFound when none does.
func (s *Store) CustomerByEmail(ctx context.Context, workspaceID uuid.UUID, email string) (uuid.UUID, error) {
	return s.customerID(ctx, `SELECT customer_id FROM customer_emails WHERE workspace_id = $1 AND email = $2`, workspaceID, email)
}

// CustomerByProfile returns the customer linked to the provider's
// external id; ENotFound when none is.
func (s *Store) CustomerByProfile(ctx context.Context, workspaceID uuid.UUID, provider, externalID string) (uuid.UUID, error) {
	return s.customerID(ctx, `SELECT customer_id FROM customer_profiles WHERE workspace_id = $1 AND provider = $2 AND external_id = $3`,
		workspaceID, provider, externalID)
}

func (s *Store) customerID(ctx context.Context, sql string, args ...any) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, sql, args...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "no such customer")
	}
	if err != nil {
		return uuid.Nil, pg.Internal("find customer", err)
	}
	return id, nil
}

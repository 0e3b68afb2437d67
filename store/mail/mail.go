package mail

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// LockMailbox takes a transaction-scoped advisory lock on a connection's
// mail imports, so imports of one mailbox run one at a time across
// processes (a retried sync overlapping a slow one stays correct).
func (t *Tx) LockMailbox(ctx context.Context, connectionID uuid.UUID) error {
	if _, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mailbox:' || $1::text, 0))`, connectionID); err != nil {
		return pg.Internal("lock mailbox", err)
	}
	return nil
}

const mailRecordColumns = `connection_id, workspace_id, external_id, ticket_id, message_id, direction, thread_id, rfc_message_id, skipped,
	from_address, created_at`

func scanMailRecord(row pgx.Row) (helpdeskflow.MailRecord, error) {
	var r helpdeskflow.MailRecord
	err := row.Scan(&r.ConnectionID, &r.WorkspaceID, &r.ExternalID, &r.TicketID, &r.MessageID, &r.Direction, &r.ThreadID,
		&r.RFCMessageID, &r.Skipped, &r.From, &r.CreatedAt)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}

// MailRecord returns the record of a mailbox message; found is false when
// it was never recorded.
func (t *Tx) MailRecord(ctx context.Context, connectionID uuid.UUID, externalID string) (helpdeskflow.MailRecord, bool, error) {
	r, err := scanMailRecord(t.tx.QueryRow(ctx, `SELECT `+mailRecordColumns+` FROM mail_messages
		WHERE connection_id = $1 AND external_id = $2`, connectionID, externalID))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, pg.Internal("read mail record", err)
	}
	return r, true, nil
}

// MailThreadTicket returns the ticket a message of the mailbox with keys
// (provider thread ids and RFC Message-Ids, most specific first) and
// sender (a normalized address) would join: among the tickets that a
// recorded message with one of the keys made or joined, the first that
// sender may write to (allowed), else the first of all (found but not
// allowed); found is false when no recorded message has any of the keys.
// "First" is by the most specific key, then the newest record. sender may
// write to a ticket when it is an email of the ticket's customer
// (customer_emails) or the sender of a message read into the ticket
// before; an empty sender may write to none.
//
// Each key is looked up by equality (not `= ANY`, which a plan made while
// the table was small may leave out of the index condition, reading every
// record of the mailbox per lookup), and the non-empty predicates repeat
// the partial indexes' conditions so that a generic plan of the prepared
// statement can use them.
func (t *Tx) MailThreadTicket(ctx context.Context, workspaceID, connectionID uuid.UUID, keys []string, sender string) (ticketID uuid.UUID, found, allowed bool, err error) {
	if len(keys) == 0 {
		return ticketID, false, false, nil
	}
	err = t.tx.QueryRow(ctx, `WITH candidates AS (
			SELECT m.ticket_id, min(k.rank) AS rank, max(m.created_at) AS latest
			FROM unnest($2::text[]) WITH ORDINALITY AS k(key, rank)
			CROSS JOIN LATERAL (
				SELECT ticket_id, created_at FROM mail_messages
				WHERE connection_id = $1 AND thread_id = k.key AND thread_id <> '' AND ticket_id IS NOT NULL
				UNION ALL
				SELECT ticket_id, created_at FROM mail_messages
				WHERE connection_id = $1 AND rfc_message_id = k.key AND rfc_message_id <> '' AND ticket_id IS NOT NULL
			) m GROUP BY m.ticket_id
		)
		SELECT c.ticket_id, $4 <> '' AND (
				EXISTS (SELECT 1 FROM customer_emails ce JOIN customer_tickets ct ON ct.customer_id = ce.customer_id
					WHERE ce.workspace_id = $3 AND ce.email = $4 AND ct.ticket_id = c.ticket_id)
				OR EXISTS (SELECT 1 FROM mail_messages w
					WHERE w.ticket_id = c.ticket_id AND w.direction = 'in' AND w.from_address = $4)
			) AS allowed
		FROM candidates c ORDER BY allowed DESC, c.rank, c.latest DESC LIMIT 1`,
		connectionID, keys, workspaceID, sender).Scan(&ticketID, &allowed)
	if errors.Is(err, pgx.ErrNoRows) {
		return ticketID, false, false, nil
	}
	if err != nil {
		return ticketID, false, false, pg.Internal("find the ticket of a mail thread", err)
	}
	return ticketID, true, allowed, nil
}

// RecordMail records a mailbox message (next statement). Recording one
// twice is a unique violation, failing the transaction: callers check
// MailRecord under LockMailbox first.
func (t *Tx) RecordMail(ctx context.Context, r helpdeskflow.MailRecord) {
	t.tx.Defer(`INSERT INTO mail_messages (`+mailRecordColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.ConnectionID, r.WorkspaceID, r.ExternalID, r.TicketID, r.MessageID, r.Direction, r.ThreadID, r.RFCMessageID, r.Skipped, r.From, r.CreatedAt)
}

// QueueMailReply queues an agent's reply to be sent through its ticket's
// mailbox (next statement).
func (t *Tx) QueueMailReply(ctx context.Context, r helpdeskflow.MailReply) {
	t.tx.Defer(`INSERT INTO mail_replies (event_id, workspace_id, connection_id, ticket_id, message_id, status, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING`,
		r.EventID, r.WorkspaceID, r.ConnectionID, r.TicketID, r.MessageID, r.Status, r.NextAttemptAt, r.CreatedAt)
}

// ImportedMail returns which of ids the mailbox has recorded, so a sync
// fetches only the others.
func (s *Store) ImportedMail(ctx context.Context, connectionID uuid.UUID, ids []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id FROM mail_messages WHERE connection_id = $1 AND external_id = ANY($2)`, connectionID, ids)
	if err != nil {
		return nil, pg.Internal("read imported mail", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, pg.Internal("read imported mail", err)
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// MailThread returns the recorded messages of a ticket, oldest first: its
// thread ids and Message-Ids, for threading a reply.
func (s *Store) MailThread(ctx context.Context, ticketID uuid.UUID) ([]helpdeskflow.MailRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+mailRecordColumns+` FROM mail_messages WHERE ticket_id = $1 ORDER BY created_at, external_id`, ticketID)
	if err != nil {
		return nil, pg.Internal("read a mail thread", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.MailRecord, error) { return scanMailRecord(r) })
	if err != nil {
		return nil, pg.Internal("read a mail thread", err)
	}
	return out, nil
}

const mailReplyColumns = `event_id, workspace_id, connection_id, ticket_id, message_id, status, attempts, rfc_message_id, external_id,
	last_error, next_attempt_at, created_at, sent_at`

func scanMailReply(row pgx.Row) (helpdeskflow.MailReply, error) {
	var r helpdeskflow.MailReply
	err := row.Scan(&r.EventID, &r.WorkspaceID, &r.ConnectionID, &r.TicketID, &r.MessageID, &r.Status, &r.Attempts, &r.RFCMessageID,
		&r.ExternalID, &r.LastError, &r.NextAttemptAt, &r.CreatedAt, &r.SentAt)
	r.NextAttemptAt, r.CreatedAt = r.NextAttemptAt.UTC(), r.CreatedAt.UTC()
	if r.SentAt != nil {
		u := r.SentAt.UTC()
		r.SentAt = &u
	}
	return r, err
}

// ClaimMailReplies leases up to limit replies due at now for one send
// attempt each until leaseUntil: status sending, attempts counted, the
// Message-Id given (newID is called for a reply that has none yet, so a
// retry sends the same Message-Id). It returns them as they were before
// the claim (Status pending, or sending for one whose earlier attempt
// was interrupted: it may have been sent) with the Message-Id.
func (s *Store) ClaimMailReplies(ctx context.Context, now, leaseUntil time.Time, limit int, newID func() string) ([]helpdeskflow.MailReply, error) {
	var out []helpdeskflow.MailReply
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+mailReplyColumns+` FROM mail_replies WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.MailReply, error) { return scanMailReply(r) }); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for i := range out {
			if out[i].RFCMessageID == "" {
				out[i].RFCMessageID = newID()
			}
			b.Queue(`UPDATE mail_replies SET status = 'sending', attempts = attempts + 1, rfc_message_id = $2, next_attempt_at = $3
				WHERE event_id = $1`, out[i].EventID, out[i].RFCMessageID, leaseUntil)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, pg.Internal("claim mail replies", err)
	}
	return out, nil
}

// MailReplySent records that a reply went out (or was found in the
// mailbox) and records the sent message on the ticket's thread, in one
// transaction.
func (s *Store) MailReplySent(ctx context.Context, r helpdeskflow.MailReply, rec helpdeskflow.MailRecord) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`UPDATE mail_replies SET status = 'sent', external_id = $2, sent_at = $3, last_error = '' WHERE event_id = $1`,
			r.EventID, rec.ExternalID, rec.CreatedAt)
		b.Queue(`INSERT INTO mail_messages (`+mailRecordColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (connection_id, external_id) DO NOTHING`,
			rec.ConnectionID, rec.WorkspaceID, rec.ExternalID, rec.TicketID, rec.MessageID, rec.Direction, rec.ThreadID, rec.RFCMessageID, rec.Skipped,
			rec.From, rec.CreatedAt)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return pg.Internal("record a sent reply", err)
	}
	return nil
}

// MailReplyFailed records a failed attempt: retried at retryAt (status
// pending), or given up on (retryAt nil: status failed).
func (s *Store) MailReplyFailed(ctx context.Context, eventID uuid.UUID, message string, retryAt *time.Time, now time.Time) error {
	status, next := helpdeskflow.MailReplyFailed, now
	if retryAt != nil {
		status, next = helpdeskflow.MailReplyPending, *retryAt
	}
	if _, err := s.pool.Exec(ctx, `UPDATE mail_replies SET status = $2, last_error = $3, next_attempt_at = $4 WHERE event_id = $1`,
		eventID, status, message, next); err != nil {
		return pg.Internal("record a failed reply", err)
	}
	return nil
}

// MailReplies lists a ticket's replies sent or to be sent by mail, oldest
// first.
func (s *Store) MailReplies(ctx context.Context, workspaceID, ticketID uuid.UUID) ([]helpdeskflow.MailReply, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+mailReplyColumns+` FROM mail_replies WHERE workspace_id = $1 AND ticket_id = $2
		ORDER BY created_at, event_id`, workspaceID, ticketID)
	if err != nil {
		return nil, pg.Internal("list mail replies", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.MailReply, error) { return scanMailReply(r) })
	if err != nil {
		return nil, pg.Internal("list mail replies", err)
	}
	return out, nil
}

// PurgeSkippedMail deletes up to limit of the oldest records of mail that
// made no ticket (skipped) recorded before before, in one statement, and
// reports how many it deleted. Records tied to a ticket are kept: later
// mail joins its ticket through them and replies thread on them. A
// skipped record only keeps a later sync from reading the message again,
// and a sync reads back at most its window (7 days, a day more for IMAP),
// so before must lie further back than that; the caller checks it. It uses
// the index mail_messages_skipped (migration 0025). It returns EInternal
// (EUnavailable when Postgres cannot be reached) on a database error.
func (s *Store) PurgeSkippedMail(ctx context.Context, before time.Time, limit int) (int64, error) {
	// The batch is a CTE, run once: as an IN (subquery) a plan may run
	// the subquery again per row and delete more than limit.
	tag, err := s.pool.Exec(ctx, `WITH batch AS (
			SELECT connection_id, external_id FROM mail_messages WHERE ticket_id IS NULL AND created_at < $1
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
		DELETE FROM mail_messages m USING batch
		WHERE m.connection_id = batch.connection_id AND m.external_id = batch.external_id AND m.ticket_id IS NULL`, before, limit)
	if err != nil {
		return 0, pg.Internal("purge skipped mail records", err)
	}
	return tag.RowsAffected(), nil
}

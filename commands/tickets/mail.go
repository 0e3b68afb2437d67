package tickets

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
)

// MailTx is what mail imports and replies need of a transaction: the
// imported-mail records and the reply outbox.
type MailTx interface {
	// LockMailbox serializes imports of one mailbox until commit, across
	// processes.
	LockMailbox(ctx context.Context, connectionID uuid.UUID) error
	// MailRecord returns the record of a mailbox message; found is false
	// when it was never imported.
	MailRecord(ctx context.Context, connectionID uuid.UUID, externalID string) (rec helpdeskflow.MailRecord, found bool, err error)
	// MailThreadTicket returns the ticket a message with keys (provider
	// thread ids and RFC Message-Ids, most specific first) from sender (a
	// normalized address) would join: of the tickets recorded messages
	// with those keys made or joined, the first that sender may write to
	// (allowed: an email of the ticket's customer, or the sender of a
	// message read into the ticket before), else the first of all; found
	// is false when no recorded message has any of the keys.
	MailThreadTicket(ctx context.Context, workspaceID, connectionID uuid.UUID, keys []string, sender string) (ticketID uuid.UUID, found, allowed bool, err error)
	// RecordMail records a mailbox message (next statement).
	RecordMail(ctx context.Context, rec helpdeskflow.MailRecord)
	// QueueMailReply queues an agent's reply to be sent (next statement).
	QueueMailReply(ctx context.Context, r helpdeskflow.MailReply)
}

// ImportMail is one message read from a connected mailbox, converted by
// the mail sync: the customer is the sender, Body the sanitizable HTML of
// the whole message (for a new ticket) and ReplyBody without the quoted
// history (for a message on the ticket it answers).
type ImportMail struct {
	ConnectionID uuid.UUID
	// ExternalID is the message's id, unique per mailbox: imports are
	// idempotent by it.
	ExternalID string
	// ThreadID is the provider's thread id ("" without one) and
	// MessageID the RFC Message-Id; both tie later mail to the ticket.
	ThreadID, MessageID string
	// ThreadKeys are the keys that tie this message to an earlier one
	// (mail.ThreadKey), most specific first.
	ThreadKeys []string
	// From is the sender: the customer of a new ticket.
	From CustomerRef
	// DMARCFailed reports that the receiving server's
	// Authentication-Results says the sender's domain failed DMARC
	// (mail.Message.DMARC "fail"): the From may be forged, so the mail
	// never joins an existing ticket.
	DMARCFailed bool
	Subject     string
	Body        string
	ReplyBody   string
	// Skip, when not "", records the message as read and makes nothing
	// (why: an auto-reply, a message from the mailbox itself…).
	Skip string
}

// ImportResult says what an import did: the ticket it created (Created)
// or added a message to, or that the message had been imported before
// (Duplicate, with the ticket it made then) or was skipped (Skipped).
// ThreadRefused says why a message that named an existing ticket's thread
// made a new ticket instead (ThreadRefusedSender, ThreadRefusedDMARC; ""
// otherwise).
type ImportResult struct {
	TicketID      uuid.UUID
	MessageID     uuid.UUID
	Created       bool
	Duplicate     bool
	Skipped       bool
	ThreadRefused string
}

// Why mail that names an existing ticket's thread makes a new ticket.
const (
	// ThreadRefusedSender: the sender is neither the ticket's customer
	// nor an address that has written to the ticket before.
	ThreadRefusedSender = "sender_not_on_ticket"
	// ThreadRefusedDMARC: the receiving server says the sender failed
	// DMARC.
	ThreadRefusedDMARC = "dmarc_failed"
)

// errTakesNoMail stops adding mail to a closed or full ticket (one with
// MaxTicketMessages messages): the mail makes a new ticket instead.
var errTakesNoMail = errors.New("ticket is closed or full")

// ImportMail turns a mailbox message into a ticket, or into a customer
// message on the ticket of its thread, with the workspace's automations
// and SLA policies applied as for any create or message, in one
// transaction that also records the message by its external id and
// sender. Imports of one mailbox are serialized, and one already recorded
// is answered Duplicate without change, so retried, interrupted or
// concurrent syncs never make a message twice. Mail to a closed ticket,
// or to a full one (MaxTicketMessages), makes a new ticket: nothing is
// lost, and the thread goes on there.
//
// Knowing a thread's id or a Message-Id is not enough to write into a
// ticket: mail joins the ticket of its thread (provider thread id,
// In-Reply-To, References alike) only when its sender is one of the
// ticket's customer's emails or has written to the ticket before (the
// sender of mail imported into it), and never when DMARCFailed; otherwise
// it makes a new ticket, with ThreadRefused saying why.
// When the automations conflict over the message, it is imported without
// them rather than held up (a mailbox must not stall on one message); the
// conflict is returned in AutomationConflict for the caller to report.
//
// Invalid input (a sender that is not an email address, fields over the
// limits) is an EValidation error; the sync records such mail as skipped.
func (s *Service) ImportMail(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd ImportMail) (ImportResult, error) {
	create := CreateTicket{Subject: cmd.Subject, Customer: cmd.From, Message: NewTicketMessage{Body: cmd.Body, AuthorType: helpdeskflow.AuthorCustomer},
		mailbox: &cmd.ConnectionID}
	if cmd.Skip == "" {
		if err := create.Validate(); err != nil {
			return ImportResult{}, err
		}
	}
	// The body is sanitized once the transaction knows whether the mail
	// makes a ticket (the whole body) or joins one (the reply body).
	reply := AddMessage{Body: cmd.ReplyBody, AuthorType: helpdeskflow.AuthorCustomer}
	if reply.Body == "" {
		reply.Body = cmd.Body
	}
	var res ImportResult
	importIn := func(tx Tx, ruleSet *rules.Set) error {
		res = ImportResult{}
		if err := tx.Mail.LockMailbox(ctx, cmd.ConnectionID); err != nil {
			return err
		}
		prev, found, err := tx.Mail.MailRecord(ctx, cmd.ConnectionID, cmd.ExternalID)
		if err != nil {
			return err
		}
		if found {
			res.Duplicate, res.Skipped = true, prev.Skipped != ""
			if prev.TicketID != nil {
				res.TicketID = *prev.TicketID
			}
			return nil
		}
		sender := helpdeskflow.NormalizeEmail(cmd.From.Email)
		rec := helpdeskflow.MailRecord{ConnectionID: cmd.ConnectionID, WorkspaceID: workspaceID, ExternalID: cmd.ExternalID,
			Direction: helpdeskflow.MailIn, ThreadID: cmd.ThreadID, RFCMessageID: cmd.MessageID, Skipped: cmd.Skip, From: sender, CreatedAt: s.now()}
		if cmd.Skip != "" {
			res.Skipped = true
			tx.Mail.RecordMail(ctx, rec)
			return nil
		}
		ticketID, found, allowed, err := tx.Mail.MailThreadTicket(ctx, workspaceID, cmd.ConnectionID, cmd.ThreadKeys, sender)
		if err != nil {
			return err
		}
		switch {
		case found && cmd.DMARCFailed:
			found, res.ThreadRefused = false, ThreadRefusedDMARC
		case found && !allowed:
			found, res.ThreadRefused = false, ThreadRefusedSender
		}
		if found {
			addMessage, err := reply.decider()
			if err != nil {
				return err
			}
			decide := func(t helpdeskflow.Ticket) ([]helpdeskflow.NewEvent, error) {
				if t.Status == helpdeskflow.StatusClosed || ticketFull(t) {
					return nil, errTakesNoMail
				}
				return addMessage(t)
			}
			t, err := s.changeTicketIn(ctx, tx, knownRules{ruleSet}, workspaceID, md, ticketID, nil, decide)
			switch {
			case err == nil:
				last := t.Messages[len(t.Messages)-1].ID
				res.TicketID, res.MessageID = t.ID, last
			case errors.Is(err, errTakesNoMail), helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound:
				found = false
			default:
				return err
			}
		}
		if !found {
			body, err := commands.SanitizedBody("message.body", create.Message.Body)
			if err != nil {
				return err
			}
			events, _, err := s.createTicketIn(ctx, tx, knownRules{ruleSet}, workspaceID, md, &create, body)
			if err != nil {
				return err
			}
			t, err := foldTicket(events)
			if err != nil {
				return err
			}
			res.TicketID, res.MessageID, res.Created = t.ID, t.Messages[0].ID, true
		}
		rec.TicketID, rec.MessageID = &res.TicketID, &res.MessageID
		tx.Mail.RecordMail(ctx, rec)
		return nil
	}
	err := s.store.Transact(ctx, func(tx Tx) error {
		ruleSet, err := s.rules.Of(ctx, tx.Rules, workspaceID)
		if err != nil {
			return err
		}
		return importIn(tx, ruleSet)
	})
	if helpdeskflow.ErrorCode(err) == helpdeskflow.EAutomationConflict {
		conflict := err
		err = s.store.Transact(ctx, func(tx Tx) error {
			ruleSet, err := s.rules.Of(ctx, tx.Rules, workspaceID)
			if err != nil {
				return err
			}
			return importIn(tx, ruleSet.WithoutAutomations())
		})
		if err == nil {
			return res, &ImportedDespite{Conflict: conflict}
		}
	}
	return res, err
}

// ImportedDespite is ImportMail's error when the message was imported
// without automations because they conflicted: the import succeeded (its
// result is valid), the conflict should be reported.
type ImportedDespite struct{ Conflict error }

func (e *ImportedDespite) Error() string {
	return "imported without automations, which conflicted: " + e.Conflict.Error()
}

func (e *ImportedDespite) Unwrap() error { return e.Conflict }

// queueMailReplies queues each public agent message among appended, the
// events just appended to mail ticket t, to be sent through its mailbox.
func queueMailReplies(ctx context.Context, tx Tx, t helpdeskflow.Ticket, appended []helpdeskflow.Event, now time.Time) error {
	for _, e := range appended {
		if e.Type != helpdeskflow.EventTicketMessageAdded {
			continue
		}
		var m helpdeskflow.MessageAdded
		if err := json.Unmarshal(e.Data, &m); err != nil {
			return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "decode ticket.message_added", Err: err}
		}
		if m.AuthorType != helpdeskflow.AuthorAgent || m.Internal {
			continue
		}
		tx.Mail.QueueMailReply(ctx, helpdeskflow.MailReply{EventID: e.ID, WorkspaceID: t.WorkspaceID, ConnectionID: *t.MailboxID,
			TicketID: t.ID, MessageID: m.ID, Status: helpdeskflow.MailReplyPending, NextAttemptAt: now, CreatedAt: now})
	}
	return nil
}

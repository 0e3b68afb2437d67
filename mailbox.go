package helpdeskflow

import (
	"time"

	"github.com/google/uuid"
)

// Directions of a mailbox message.
const (
	MailIn  = "in"
	MailOut = "out"
)

// Mail reply statuses: queued, being sent (or interrupted while being
// sent), sent, or given up on.
const (
	MailReplyPending = "pending"
	MailReplySending = "sending"
	MailReplySent    = "sent"
	MailReplyFailed  = "failed"
)

// MailRecord is one message of a connected mailbox as the sync recorded
// it: read from the mailbox (MailIn) or sent through it (MailOut).
// ExternalID is unique per connection (the Gmail message id; for IMAP the
// Message-Id). TicketID and MessageID are nil when the message made
// nothing, and Skipped says why. From is the normalized sender of a
// message read from the mailbox ("" for sent ones).
type MailRecord struct {
	ConnectionID uuid.UUID
	WorkspaceID  uuid.UUID
	ExternalID   string
	TicketID     *uuid.UUID
	MessageID    *uuid.UUID
	Direction    string
	ThreadID     string
	RFCMessageID string
	Skipped      string
	From         string
	CreatedAt    time.Time
}

// MailReply is an agent's public reply on a mail ticket, to be sent
// through the ticket's mailbox. EventID is the ticket.message_added event
// that made it.
type MailReply struct {
	EventID       uuid.UUID
	WorkspaceID   uuid.UUID
	ConnectionID  uuid.UUID
	TicketID      uuid.UUID
	MessageID     uuid.UUID
	Status        string
	Attempts      int
	RFCMessageID  string
	ExternalID    string
	LastError     string
	NextAttemptAt time.Time
	CreatedAt     time.Time
	SentAt        *time.Time
}

// TicketChannelEmail is the channel of a ticket made from a connected
// mailbox's mail.
const TicketChannelEmail = "email"

// SyncOutcome is how a mailbox sync run ended: its cursor (nil keeps the
// stored one), when to sync next, and for a failed run the error's class
// and message (a run that ends well clears the last error and the failure
// count; a failed one counts a failure). Partial marks a run that stopped
// at its deadline after making progress: not a failure, but not a full
// sync either (the time of the last full sync stays).
type SyncOutcome struct {
	State      []byte
	At         time.Time
	NextSyncAt time.Time
	ErrorClass string
	Error      string
	Partial    bool
}

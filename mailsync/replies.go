package mailsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

// ReplyStore is the event store as the reply worker uses it.
type ReplyStore interface {
	ClaimMailReplies(ctx context.Context, now, leaseUntil time.Time, limit int, newID func() string) ([]helpdeskflow.MailReply, error)
	MailReplySent(ctx context.Context, r helpdeskflow.MailReply, rec helpdeskflow.MailRecord) error
	MailReplyFailed(ctx context.Context, eventID uuid.UUID, message string, retryAt *time.Time, now time.Time) error
	Connection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, error)
	MailThread(ctx context.Context, ticketID uuid.UUID) ([]helpdeskflow.MailRecord, error)
}

// Tickets reads tickets (tickets.Service).
type Tickets interface {
	GetTicket(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (helpdeskflow.Ticket, error)
}

// ReplyConfig configures a ReplyWorker. Store, Tickets and Tokens are
// required.
type ReplyConfig struct {
	Store   ReplyStore
	Tickets Tickets
	Tokens  Tokens
	// IMAP opens Outlook connections' settings (nil: Outlook replies
	// fail).
	IMAP         IMAPSettings
	GmailBaseURL string
	HTTPClient   *http.Client
	// Poll is how often due replies are looked for (1 second); Lease how
	// long a claimed reply is held before another process may claim it
	// again (2 minutes).
	Poll, Lease time.Duration
	// SendTimeout bounds one attempt (composing, looking for an earlier
	// send, sending): three quarters of Lease by default and never more,
	// so an attempt has ended, its connection closed, before the reply's
	// lease runs out and another process could send it too.
	SendTimeout time.Duration
	// MaxAttempts is how many times a reply is tried before it is given
	// up on (10, about 8 hours with Backoff); Backoff the first wait (30
	// seconds), doubling up to an hour.
	MaxAttempts int
	Backoff     time.Duration
	// MessageIDDomain is the domain of replies' Message-Ids (the
	// service's public host name).
	MessageIDDomain string
	Metrics         *Metrics
	Logger          *slog.Logger
	Now             func() time.Time
}

// ReplyWorker sends queued agent replies through their tickets' mailboxes.
type ReplyWorker struct {
	cfg ReplyConfig
}

// NewReplyWorker returns a ReplyWorker, filling in defaults.
func NewReplyWorker(cfg ReplyConfig) *ReplyWorker {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	cfg.Poll = or(cfg.Poll, time.Second)
	cfg.Lease = or(cfg.Lease, 2*time.Minute)
	cfg.SendTimeout = min(or(cfg.SendTimeout, cfg.Lease*3/4), cfg.Lease*3/4)
	cfg.Backoff = or(cfg.Backoff, 30*time.Second)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &ReplyWorker{cfg: cfg}
}

func (w *ReplyWorker) now() time.Time { return w.cfg.Now().UTC().Truncate(time.Microsecond) }

// Run sends due replies until ctx ends.
func (w *ReplyWorker) Run(ctx context.Context) error {
	return poll.Every(ctx, w.cfg.Poll, w.cfg.Logger, "mail replies: claiming replies", w.SendDue)
}

// repliesPerRound is how many replies SendDue handles at most.
const repliesPerRound = 16

// SendDue sends the replies due now, up to 16, one by one, and returns how
// many it handled. Each is claimed just before its attempt, so its lease
// starts with the attempt and outlives it.
func (w *ReplyWorker) SendDue(ctx context.Context) (int, error) {
	newID := func() string { return mail.NewMessageID(w.cfg.MessageIDDomain) }
	n := 0
	for n < repliesPerRound {
		now := w.now()
		replies, err := w.cfg.Store.ClaimMailReplies(ctx, now, now.Add(w.cfg.Lease), 1, newID)
		if err != nil || len(replies) == 0 {
			return n, err
		}
		w.send(ctx, replies[0])
		n++
	}
	return n, nil
}

// outgoing is a reply ready to send.
type outgoing struct {
	conn     helpdeskflow.Connection
	raw      []byte
	to       []string
	threadID string
	from     string
}

// send makes one attempt at r within SendTimeout and records its outcome
// (with ctx: the deadline bounds the attempt only).
func (w *ReplyWorker) send(ctx context.Context, r helpdeskflow.MailReply) {
	attemptCtx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	out, externalID, outcome, err := w.attempt(attemptCtx, r)
	cancel()
	provider := out.conn.Provider
	if err == nil {
		w.cfg.Metrics.reply(provider, outcome)
		w.logDone(r, w.sent(ctx, r, out, externalID))
		return
	}
	now := w.now()
	attempts := r.Attempts + 1
	var retryAt *time.Time
	if attempts < w.cfg.MaxAttempts && !permanent(err) {
		d := w.cfg.Backoff
		for i := 1; i < attempts && d < time.Hour; i++ {
			d *= 2
		}
		if limited, after := gmail.IsRateLimited(err); limited {
			d = max(d, after)
		}
		at := now.Add(min(d, time.Hour))
		retryAt = &at
	}
	if retryAt == nil {
		w.cfg.Metrics.reply(provider, "failed")
		w.cfg.Logger.Error("mail replies: giving up on a reply", "ticket", r.TicketID, "message", r.MessageID, "attempts", attempts, "error", err)
	} else {
		w.cfg.Metrics.reply(provider, "retry")
		w.cfg.Logger.Warn("mail replies: sending failed, retrying", "ticket", r.TicketID, "message", r.MessageID, "retry_at", *retryAt, "error", err)
	}
	if ferr := w.cfg.Store.MailReplyFailed(ctx, r.EventID, err.Error(), retryAt, now); ferr != nil {
		w.cfg.Logger.Warn("mail replies: recording a failure failed", "ticket", r.TicketID, "error", ferr)
	}
}

// attempt composes r and sends it, unless an earlier attempt is found to
// have sent it already; it returns the reply's id in the mailbox and the
// outcome for the metric (sent or found_sent).
func (w *ReplyWorker) attempt(ctx context.Context, r helpdeskflow.MailReply) (out outgoing, externalID, outcome string, err error) {
	if out, err = w.compose(ctx, r); err != nil {
		return out, "", "", err
	}
	if r.Attempts > 0 {
		// An earlier attempt may have sent it before it failed or was
		// interrupted.
		if externalID, err = w.findSent(ctx, out, r); err != nil || externalID != "" {
			return out, externalID, "found_sent", err
		}
	}
	externalID, err = w.deliver(ctx, out)
	return out, externalID, "sent", err
}

func (w *ReplyWorker) logDone(r helpdeskflow.MailReply, err error) {
	if err != nil {
		w.cfg.Logger.Warn("mail replies: recording a sent reply failed; it will be found in the mailbox and not sent again", "ticket", r.TicketID, "error", err)
	}
}

// errPermanent marks failures no retry can fix.
var errPermanent = errors.New("permanent")

func permanent(err error) bool {
	return errors.Is(err, errPermanent) || helpdeskflow.ErrorCode(err) == helpdeskflow.EValidation ||
		helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound
}

// compose writes the reply: from the mailbox, to the ticket's customer,
// with the ticket's subject, In-Reply-To the newest message of the
// thread and References every Message-Id of it, and the reply's
// Message-Id (kept across attempts).
func (w *ReplyWorker) compose(ctx context.Context, r helpdeskflow.MailReply) (outgoing, error) {
	var out outgoing
	conn, err := w.cfg.Store.Connection(ctx, r.WorkspaceID, r.ConnectionID)
	if err != nil {
		return out, fmt.Errorf("the ticket's mailbox %s: %w", r.ConnectionID, err)
	}
	out.conn = conn
	if conn.Status != helpdeskflow.ConnectionActive {
		return out, fmt.Errorf("the ticket's mailbox is %s; reconnect it to send replies", conn.Status)
	}
	t, err := w.cfg.Tickets.GetTicket(ctx, r.WorkspaceID, r.TicketID, false)
	if err != nil {
		return out, err
	}
	var body *helpdeskflow.Message
	for i := range t.Messages {
		if t.Messages[i].ID == r.MessageID {
			body = &t.Messages[i]
		}
	}
	if body == nil || t.Customer == nil {
		return out, fmt.Errorf("%w: message %s of ticket %s not found", errPermanent, r.MessageID, r.TicketID)
	}
	thread, err := w.cfg.Store.MailThread(ctx, r.TicketID)
	if err != nil {
		return out, err
	}
	var refs []string
	for _, m := range thread {
		if m.RFCMessageID != "" && m.RFCMessageID != r.RFCMessageID {
			refs = append(refs, m.RFCMessageID)
		}
		if m.ThreadID != "" && m.Direction == helpdeskflow.MailIn {
			out.threadID = m.ThreadID
		}
	}
	inReplyTo := ""
	if len(refs) > 0 {
		inReplyTo = refs[len(refs)-1]
	}
	if out.from, err = w.address(ctx, conn); err != nil {
		return out, err
	}
	if r.RFCMessageID == "" {
		return out, fmt.Errorf("%w: reply %s has no Message-Id", errPermanent, r.EventID)
	}
	out.to = []string{t.Customer.Email}
	out.raw, err = mail.BuildReply(mail.Address{Email: out.from}, []mail.Address{{Name: t.Customer.Name, Email: t.Customer.Email}},
		t.Subject, inReplyTo, refs, body.BodyText, body.Body, r.RFCMessageID, w.cfg.Now())
	return out, err
}

// address is the mailbox's own address.
func (w *ReplyWorker) address(ctx context.Context, c helpdeskflow.Connection) (string, error) {
	switch c.Provider {
	case ProviderGmail:
		var st gmailState
		if len(c.SyncState) > 0 {
			if err := json.Unmarshal(c.SyncState, &st); err != nil {
				return "", err
			}
		}
		if st.Address != "" {
			return st.Address, nil
		}
		if strings.Contains(c.Account, "@") {
			return c.Account, nil
		}
		return "", errors.New("the mailbox's address is not known yet (it is learnt by the first sync)")
	case ProviderOutlook:
		return w.imapAddress(ctx, c)
	}
	return "", fmt.Errorf("%w: provider %q cannot send mail", errPermanent, c.Provider)
}

func (w *ReplyWorker) gmailClient(c helpdeskflow.Connection) *gmail.Client {
	return gmail.New(w.cfg.GmailBaseURL, w.cfg.HTTPClient, func(ctx context.Context) (string, error) {
		return w.cfg.Tokens.AccessToken(ctx, c.WorkspaceID, c.ID)
	})
}

// deliver sends the reply and returns its id in the mailbox.
func (w *ReplyWorker) deliver(ctx context.Context, out outgoing) (string, error) {
	if out.conn.Provider == ProviderOutlook {
		return w.deliverSMTP(ctx, out)
	}
	return w.gmailClient(out.conn).Send(ctx, out.raw, out.threadID)
}

// findSent looks for an interrupted reply in the mailbox by its
// Message-Id; "" when it was not sent. Over SMTP nothing can be looked up,
// so an interrupted reply is sent again (at least once).
func (w *ReplyWorker) findSent(ctx context.Context, out outgoing, r helpdeskflow.MailReply) (string, error) {
	if out.conn.Provider != ProviderGmail {
		return "", nil
	}
	page, err := w.gmailClient(out.conn).List(ctx, "rfc822msgid:"+r.RFCMessageID, 1, "")
	if err != nil || len(page.MessageIDs) == 0 {
		return "", err
	}
	return page.MessageIDs[0], nil
}

// sent records a sent reply and its message on the thread, so the
// customer's answer to it finds the ticket.
func (w *ReplyWorker) sent(ctx context.Context, r helpdeskflow.MailReply, out outgoing, externalID string) error {
	ticketID, messageID := r.TicketID, r.MessageID
	rec := helpdeskflow.MailRecord{ConnectionID: r.ConnectionID, WorkspaceID: r.WorkspaceID, ExternalID: externalID,
		TicketID: &ticketID, MessageID: &messageID, Direction: helpdeskflow.MailOut, ThreadID: out.threadID,
		RFCMessageID: r.RFCMessageID, CreatedAt: w.now()}
	return w.cfg.Store.MailReplySent(ctx, r, rec)
}

package mailsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

// IMAPSettings opens an Outlook connection's server settings and app
// password (integrations.Manager), and gives the options its clients use
// (test CAs).
type IMAPSettings interface {
	IMAPSettings(ctx context.Context, workspaceID, id uuid.UUID) (imapmail.Settings, error)
	IMAPOptions() []imapmail.Option
}

// imapState is an IMAP mailbox's cursor.
type imapState struct {
	imapmail.Cursor
}

// imapBatch is how many messages one IMAP fetch reads.
const imapBatch = 100

// imapError marks a failure talking to the mail server, for classify.
type imapError struct{ err error }

func (e imapError) Error() string { return e.err.Error() }
func (e imapError) Unwrap() error { return e.err }

// dayBefore moves a time a day back: IMAP's SINCE has day granularity in
// the server's time zone.
const dayBefore = 24 * time.Hour

// timeSlack is how far before the last good sync a fallback listing
// starts, for clocks that disagree.
const timeSlack = time.Hour

// syncIMAP fetches the mail with UIDs above the stored cursor, a batch at a
// time, storing the cursor after each batch. When the mailbox's
// UIDVALIDITY changed (or on the first sync), the server's UIDs mean
// nothing any more: it reads the window since the last good sync again,
// and the import, keyed by Message-Id, skips what it already has.
func (r *run) syncIMAP(ctx context.Context) error {
	settings, err := r.w.cfg.IMAP.IMAPSettings(ctx, r.conn.WorkspaceID, r.conn.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", errSettings, err)
	}
	var st imapState
	if len(r.conn.SyncState) > 0 {
		if err := json.Unmarshal(r.conn.SyncState, &st); err != nil {
			return fmt.Errorf("read the stored IMAP cursor: %w", err)
		}
	}
	since := r.w.now().Add(-r.w.cfg.Window)
	if r.conn.LastSyncAt != nil && r.conn.LastSyncAt.After(since) {
		since = r.conn.LastSyncAt.Add(-dayBefore)
	}
	client := imapmail.New(settings, r.w.cfg.IMAP.IMAPOptions()...)
	for {
		batch, err := client.Fetch(ctx, st.Cursor, since, imapBatch)
		if err != nil {
			return imapError{err}
		}
		if batch.Reset && st.UIDValidity != 0 {
			r.w.cfg.Logger.Info("mail sync: the IMAP mailbox's UIDVALIDITY changed; reading the window again", "connection", r.conn.ID,
				"old", st.UIDValidity, "new", batch.Next.UIDValidity)
		}
		for _, m := range batch.Messages {
			if m.TooLarge {
				r.w.cfg.Logger.Warn("mail sync: a message is too large to import", "connection", r.conn.ID, "uid", m.UID, "bytes", m.Size)
				id := fmt.Sprintf("uid:%d:%d", batch.Next.UIDValidity, m.UID)
				if err := r.importMessage(ctx, tickets.ImportMail{ConnectionID: r.conn.ID, ExternalID: id,
					Skip: fmt.Sprintf("%s: %d bytes, over the limit of %d", SkipTooLarge, m.Size, imapmail.MaxMessageSize)}); err != nil {
					return err
				}
				continue
			}
			parsed, perr := mail.Parse(m.Raw)
			in := convert(r.conn.ID, rfcExternalID(parsed, m.Raw), settings.Address, parsed)
			if perr != nil {
				in.Skip = unreadable(perr)
			}
			if err := r.importMessage(ctx, in); err != nil {
				return err
			}
		}
		st.Cursor = batch.Next
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if err := r.checkpoint(ctx, b); err != nil {
			return err
		}
		if !batch.More {
			return nil
		}
	}
}

// errSettings marks connection settings that cannot be opened.
var errSettings = errors.New("the connection's settings cannot be read")

// imapFailure classifies a failure of an Outlook connection; ok is false
// for other errors.
func imapFailure(err error) (failure, bool) {
	if errors.Is(err, errSettings) {
		return failure{class: ClassSettings, status: helpdeskflow.ConnectionNeedsRevalidation,
			message: "The stored server settings cannot be opened (" + err.Error() + "); enter them again."}, true
	}
	var ie imapError
	if !errors.As(err, &ie) {
		return failure{}, false
	}
	class := imapmail.Classify(ie.err)
	f := failure{class: class}
	switch class {
	case imapmail.ErrorAuth:
		f.status = helpdeskflow.ConnectionNeedsRevalidation
		f.message = "The mail server refused the username or app password (" + err.Error() + "). Create a new app password and enter it again."
	case imapmail.ErrorTLS:
		f.status = helpdeskflow.ConnectionNeedsRevalidation
		f.message = "A secure connection to the mail server failed (" + err.Error() + "). Check the security setting (TLS or STARTTLS) and the port, and that the server's certificate is valid."
	case imapmail.ErrorMailbox:
		f.status = helpdeskflow.ConnectionNeedsRevalidation
		f.message = "The mail folder does not exist on the server (" + err.Error() + "). Check the folder name in the settings."
	case imapmail.ErrorUnreachable, imapmail.ErrorTimeout:
		f.message = "The mail server cannot be reached (" + err.Error() + "); the sync retries with backoff. If the server filters by IP address, allow HelpDeskFlow's addresses."
	case imapmail.ErrorBlocked:
		f.status = helpdeskflow.ConnectionNeedsRevalidation
		f.message = "HelpDeskFlow does not connect to this mail server (" + err.Error() + "). Enter a mail server at a public address, on a mail port."
	case imapmail.ErrorDNS:
		f.message = "The mail server's host name does not resolve (" + err.Error() + "); check the host in the settings. The sync retries with backoff."
	default:
		f.class = ClassConnectionError
		f.message = "Talking to the mail server failed (" + err.Error() + "); the sync retries with backoff."
	}
	return f, true
}

// imapAddress is an Outlook connection's own address.
func (w *ReplyWorker) imapAddress(ctx context.Context, c helpdeskflow.Connection) (string, error) {
	if w.cfg.IMAP == nil {
		return "", fmt.Errorf("%w: Outlook is not configured", errPermanent)
	}
	s, err := w.cfg.IMAP.IMAPSettings(ctx, c.WorkspaceID, c.ID)
	if err != nil {
		return "", err
	}
	return s.Address, nil
}

// deliverSMTP sends the reply by SMTP; its id in the mailbox is its
// Message-Id, as IMAP imports know messages by it.
func (w *ReplyWorker) deliverSMTP(ctx context.Context, out outgoing) (string, error) {
	s, err := w.cfg.IMAP.IMAPSettings(ctx, out.conn.WorkspaceID, out.conn.ID)
	if err != nil {
		return "", err
	}
	parsed, err := mail.Parse(out.raw)
	if err != nil {
		return "", err
	}
	if err := imapmail.New(s, w.cfg.IMAP.IMAPOptions()...).Send(ctx, out.to, out.raw); err != nil {
		if imapmail.Classify(err) == imapmail.ErrorRejected {
			return "", fmt.Errorf("%w: %w", errPermanent, err)
		}
		return "", err
	}
	return rfcExternalID(parsed, out.raw), nil
}

package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
)

// Outlook is the provider name of IMAP/SMTP mailbox connections (Outlook
// and any other server that takes an app password).
const Outlook = "outlook"

// imapKind is the token kind the settings are sealed under.
const imapKind = "imap"

// ConnectIMAP connects the workspace to a mailbox over IMAP/SMTP: it
// checks settings (filling in defaults), logs in to both servers without
// sending anything, and stores the settings with the app password sealed.
// The connection is active at once, and synced from then on. Connecting
// the same address again updates that connection's settings (after an
// app password change, say): it keeps its id and its cursor, so the sync
// resumes where it stopped.
//
// Errors: EValidation naming each bad field, or the field behind a
// refused check: password for a refused login, imap_security or
// smtp_security for TLS (a certificate of an authority the clients do not
// trust says so, and names HDF_EXTRA_CA_FILE; and for security none, allowed only to a loopback
// server where the outbound address policy allows loopback), mailbox,
// imap_host or smtp_host for an unreachable server and for an address the
// policy refuses (class blocked_address; nothing is sent to it),
// imap_port or smtp_port for a port that is not a mail port. The problem
// says what failed in fixed words, never what the server answered (see
// imapmail.Error).
func (m *Manager) ConnectIMAP(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, settings imapmail.Settings) (helpdeskflow.Connection, error) {
	if err := settings.Validate(); err != nil {
		return helpdeskflow.Connection{}, err
	}
	if err := imapmail.New(settings, m.cfg.IMAPOptions...).Check(ctx); err != nil {
		return helpdeskflow.Connection{}, checkError(err)
	}
	existing, err := m.cfg.Store.Connections(ctx, workspaceID)
	if err != nil {
		return helpdeskflow.Connection{}, err
	}
	now := m.now()
	c := helpdeskflow.Connection{ID: uuid.New(), WorkspaceID: workspaceID, Provider: Outlook, Status: helpdeskflow.ConnectionPending,
		Account: settings.Address, CreatedAt: now, UpdatedAt: now}
	reconnect := false
	for _, e := range existing {
		if e.Provider == Outlook && e.Account == settings.Address {
			c, reconnect = e, true
			break
		}
	}
	plain, err := json.Marshal(settings)
	if err != nil {
		return helpdeskflow.Connection{}, err
	}
	var out helpdeskflow.Connection
	err = m.cfg.Store.Transact(ctx, func(tx Tx) error {
		if !reconnect {
			tx.CreateConnection(ctx, c)
		} else if _, _, err := tx.LockConnection(ctx, workspaceID, c.ID); err != nil {
			return err
		}
		sealed, err := m.cfg.Sealer.Seal(plain, helpdeskflow.ConnectionTokenAAD(workspaceID, c.ID, imapKind))
		if err != nil {
			return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "seal the mailbox settings", Err: err}
		}
		c.Status, c.Details, c.TokenExpiry, c.UpdatedAt = helpdeskflow.ConnectionActive, publicSettings(settings), nil, now
		c.LastError, c.LastErrorClass, c.NextRetryAt = "", "", nil
		if err := tx.StoreTokens(ctx, c, helpdeskflow.ConnectionTokens{Access: sealed}, now); err != nil {
			return err
		}
		tx.ResumeSync(ctx, c.ID)
		out = c
		return appendWorkspaceEvent(ctx, tx, workspaceID, md, helpdeskflow.EventIntegrationConnected,
			helpdeskflow.IntegrationChanged{Provider: Outlook, Team: c.Account}, now)
	})
	return out, err
}

// publicSettings are the settings an API may show: all but the password.
func publicSettings(s imapmail.Settings) map[string]any {
	return map[string]any{"imap_host": s.IMAPHost, "imap_port": s.IMAPPort, "imap_security": s.IMAPSecurity,
		"smtp_host": s.SMTPHost, "smtp_port": s.SMTPPort, "smtp_security": s.SMTPSecurity,
		"username": s.Username, "address": s.Address, "mailbox": s.Mailbox}
}

// checkError turns a failed check into a validation error naming the
// setting to fix, one detail per refused server (an imap_* field for the
// IMAP server's failure, an smtp_* one for the SMTP server's), and its
// message names each failure's protocol and class ("imap tls, smtp
// host_unreachable"). Its words are the
// imapmail errors' own, which never repeat what a server said.
func checkError(err error) error {
	if helpdeskflow.ErrorCode(err) == helpdeskflow.EValidation {
		return err // settings the address policy finds malformed
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	var first *imapmail.Error
	var details []helpdeskflow.FieldProblem
	var classes []string
	for _, err := range errs {
		var e *imapmail.Error
		if !errors.As(err, &e) {
			continue
		}
		if first == nil {
			first = e
		}
		classes = append(classes, e.Protocol+" "+e.Kind)
		field := e.Protocol + "_host"
		switch {
		case e.Kind == imapmail.ErrorAuth:
			field = "password"
		case e.Kind == imapmail.ErrorTLS:
			field = e.Protocol + "_security"
		case e.Kind == imapmail.ErrorMailbox:
			field = "mailbox"
		case errors.Is(e, imapmail.ErrPortRefused):
			field = e.Protocol + "_port"
		}
		problem := e.Error()
		if e.Kind == imapmail.ErrorUnreachable || e.Kind == imapmail.ErrorTimeout {
			problem += " (if the server filters by IP address, allow HelpDeskFlow's addresses)"
		}
		if i := slices.IndexFunc(details, func(d helpdeskflow.FieldProblem) bool { return d.Field == field }); i >= 0 {
			details[i].Problem += "; " + problem // a wrong password fails both logins
			continue
		}
		details = append(details, helpdeskflow.FieldProblem{Field: field, Problem: problem})
	}
	if first == nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "checking the mail servers failed", Err: err}
	}
	msg := "the mail server refused the settings: " + strings.Join(classes, ", ")
	if first.Kind == imapmail.ErrorBlocked || errors.Is(first, imapmail.ErrPlaintextRefused) {
		msg = "HelpDeskFlow does not connect to the mail server as set: " + strings.Join(classes, ", ")
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: msg, Details: details, Err: err}
}

// IMAPSettings opens an Outlook connection's settings, app password
// included. ENotFound for an unknown connection.
func (m *Manager) IMAPSettings(ctx context.Context, workspaceID, id uuid.UUID) (imapmail.Settings, error) {
	var s imapmail.Settings
	c, tokens, err := m.cfg.Store.ConnectionTokens(ctx, workspaceID, id)
	if err != nil {
		return s, err
	}
	if c.Provider != Outlook || tokens.Access == nil {
		return s, helpdeskflow.Errorf(helpdeskflow.ENotFound, "integration %s has no mail server settings", id)
	}
	plain, err := m.cfg.Sealer.Open(tokens.Access, helpdeskflow.ConnectionTokenAAD(workspaceID, id, imapKind))
	if err != nil {
		return s, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "open the mail server settings (was HDF_SECRET_KEYS changed?)", Err: err}
	}
	if err := json.Unmarshal(plain, &s); err != nil {
		return s, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "read the mail server settings", Err: err}
	}
	return s, nil
}

// IMAPOptions are the options of this Manager's IMAP/SMTP clients.
func (m *Manager) IMAPOptions() []imapmail.Option { return m.cfg.IMAPOptions }

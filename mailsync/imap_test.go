package mailsync_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

// outlook is a workspace connected to a real Dovecot mailbox of its own
// and a real SMTP server that delivers into that mailbox.
type outlook struct {
	*fixture
	env     imapmailtest.Environment
	mailbox string
	smtp    *imapmailtest.SMTPServer
	m       *integrations.Manager
	conn    helpdeskflow.Connection
	address string
}

func newOutlook(t *testing.T) *outlook {
	f := newFixture(t)
	if err := f.m.Disconnect(f.ctx, f.workspace, md, f.conn.ID); err != nil { // this workspace syncs Outlook only
		t.Fatal(err)
	}
	env := imapmailtest.Env(t)
	box := imapmailtest.NewMailbox(t, env)
	srv := imapmailtest.NewSMTPServer(t, imapmailtest.SMTPOptions{Username: env.User, Password: env.Password, DeliverTo: box, DeliverEnv: env})
	m := f.manager(imapmail.WithTLSConfig(imapmailtest.TLSConfig(env.CAPEM, srv.CAPEM)))
	settings := env.Settings(imapmail.SecurityTLS, box)
	srv.Apply(&settings, imapmail.SecurityStartTLS)
	c, err := m.ConnectIMAP(f.ctx, f.workspace, md, settings)
	if err != nil {
		t.Fatal(err)
	}
	o := &outlook{fixture: f, env: env, mailbox: box, smtp: srv, m: m, conn: c, address: c.Account}
	if c.Status != helpdeskflow.ConnectionActive || c.Provider != integrations.Outlook || o.address == "" || c.Details["password"] != nil {
		t.Fatalf("connected: %+v", c)
	}
	return o
}

func (o *outlook) worker() *mailsync.Worker {
	return mailsync.NewWorker(mailsync.Config{Store: o.store, Importer: o.svc.Tickets, Tokens: o.m, IMAP: o.m, Now: o.clock.Now})
}

func (o *outlook) sync(w *mailsync.Worker) {
	o.t.Helper()
	o.clock.Advance(61 * time.Second)
	if n, err := w.SyncDue(o.ctx); err != nil || n != 1 {
		o.t.Fatalf("synced %d mailboxes: %v", n, err)
	}
}

func (o *outlook) deliver(raw []byte) {
	o.t.Helper()
	imapmailtest.Append(o.t, o.env, o.mailbox, raw, time.Now())
}

func (o *outlook) imapConnection() helpdeskflow.Connection {
	o.t.Helper()
	c, err := o.store.Connection(o.ctx, o.workspace, o.conn.ID)
	if err != nil {
		o.t.Fatal(err)
	}
	return c
}

func TestOutlook_SyncsByUIDAndRepliesBySMTP(t *testing.T) {
	o := newOutlook(t)
	w := o.worker()
	o.deliver(message("Ann <ann@example.com>", "Printer on fire", "p1@example.com", "", "Help!"))
	o.deliver(message("ann@example.com", "Re: Printer on fire", "p2@example.com", "p1@example.com", "Still burning.\n\n> Help!"))
	o.deliver(message("bob@example.org", "Invoice", "i1@example.org", "", "Where is it?"))
	o.sync(w)
	got := o.tickets()
	if len(got) != 2 || len(got["Printer on fire"]) != 1 || len(got["Printer on fire"][0].Messages) != 2 {
		t.Fatalf("tickets: %v", keys(got))
	}
	if c := o.imapConnection(); c.LastSyncAt == nil || c.LastError != "" || !strings.Contains(string(c.SyncState), "uid_validity") {
		t.Fatalf("connection: %+v", c)
	}

	// An agent reply goes out by SMTP, threaded; the SMTP server delivers
	// it into the synced mailbox, where the next sync knows it as ours.
	printer := got["Printer on fire"][0]
	o.reply(printer, "<p>We are on our way.</p>", false)
	replies := mailsync.NewReplyWorker(mailsync.ReplyConfig{Store: o.store, Tickets: o.svc.Tickets, Tokens: o.m, IMAP: o.m, Now: o.clock.Now,
		MessageIDDomain: "helpdesk.acme.test"})
	if n, err := replies.SendDue(o.ctx); err != nil || n != 1 {
		t.Fatalf("replies: %d, %v", n, err)
	}
	sent := o.smtp.Messages()
	if len(sent) != 1 || sent[0].To[0] != "ann@example.com" || !sent[0].TLS {
		t.Fatalf("sent: %+v", sent)
	}
	m, err := mail.Parse(sent[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if m.InReplyTo != "p2@example.com" || len(m.References) != 2 || m.References[0] != "p1@example.com" || m.Subject != "Re: Printer on fire" ||
		m.From.Email != o.address {
		t.Fatalf("reply headers: in-reply-to %q, references %v, subject %q, from %v", m.InReplyTo, m.References, m.Subject, m.From)
	}
	// The customer answers the reply.
	o.deliver(message("ann@example.com", "Re: Printer on fire", "p3@example.com", m.MessageID, "Thanks!"))
	o.sync(w)
	got = o.tickets()
	if len(got) != 2 || len(got["Printer on fire"][0].Messages) != 4 {
		t.Fatalf("after the answer: %v, %d messages", keys(got), len(got["Printer on fire"][0].Messages))
	}

	// UIDVALIDITY changes (the folder was rebuilt): the same messages come
	// back under new UIDs; only the new one is imported.
	old := imapmailtest.UIDValidity(t, o.env, o.mailbox)
	if imapmailtest.Recreate(t, o.env, o.mailbox) == old {
		t.Fatal("UIDVALIDITY did not change")
	}
	o.deliver(message("Ann <ann@example.com>", "Printer on fire", "p1@example.com", "", "Help!"))
	o.deliver(message("bob@example.org", "Invoice", "i1@example.org", "", "Where is it?"))
	o.deliver(message("cat@example.net", "New after the rebuild", "n1@example.net", "", "Hello"))
	o.sync(w)
	got = o.tickets()
	if len(got) != 3 || len(got["Invoice"]) != 1 || len(got["Printer on fire"][0].Messages) != 4 || len(got["New after the rebuild"]) != 1 {
		t.Fatalf("after UIDVALIDITY changed: %v", keys(got))
	}
}

func TestOutlook_ConnectionErrorsNameTheCause(t *testing.T) {
	o := newOutlook(t)
	// Wrong app password: refused at connect, naming the field.
	bad := o.env.Settings(imapmail.SecurityTLS, o.mailbox)
	o.smtp.Apply(&bad, imapmail.SecurityStartTLS)
	bad.Password = "wrong"
	_, err := o.m.ConnectIMAP(o.ctx, o.workspace, md, bad)
	if d := helpdeskflow.ErrorDetails(err); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation || len(d) != 1 || d[0].Field != "password" ||
		!strings.Contains(d[0].Problem, "authentication failed") {
		t.Fatalf("wrong password: %v", err)
	}
	// Nothing listening: host unreachable, with the allow-listing hint.
	closed := o.env.Settings(imapmail.SecurityNone, o.mailbox)
	closed.IMAPPort = 1
	_, err = o.m.ConnectIMAP(o.ctx, o.workspace, md, closed)
	if d := helpdeskflow.ErrorDetails(err); len(d) == 0 || d[0].Field != "imap_host" || !strings.Contains(d[0].Problem, "host unreachable") ||
		!strings.Contains(d[0].Problem, "IP address") {
		t.Fatalf("closed port: %v", err)
	}

	// A certificate the service stops trusting fails the sync with a TLS
	// error: the connection needs revalidation and says why.
	untrusting := o.manager(imapmail.WithTLSConfig(&tls.Config{}))
	w := mailsync.NewWorker(mailsync.Config{Store: o.store, Importer: o.svc.Tickets, Tokens: untrusting, IMAP: untrusting, Now: o.clock.Now})
	o.sync(w)
	c := o.imapConnection()
	if c.Status != helpdeskflow.ConnectionNeedsRevalidation || c.LastErrorClass != imapmail.ErrorTLS || !strings.Contains(integrations.Explain(c), "certificate") {
		t.Fatalf("after a TLS failure: %+v: %s", c, integrations.Explain(c))
	}
	events, err := o.store.Load(o.ctx, o.workspace, o.workspace)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	var data struct{ Error string }
	if err := json.Unmarshal(last.Data, &data); err != nil || last.Type != helpdeskflow.EventIntegrationNeedsRevalidation || data.Error != "tls" {
		t.Fatalf("last workspace event: %s %s", last.Type, last.Data)
	}
	o.clock.Advance(time.Hour)
	if n, _ := o.worker().SyncDue(o.ctx); n != 0 {
		t.Fatal("a mailbox that needs revalidation was synced")
	}
	// Saving the settings again resumes it.
	good := o.env.Settings(imapmail.SecurityTLS, o.mailbox)
	o.smtp.Apply(&good, imapmail.SecurityStartTLS)
	if again, err := o.m.ConnectIMAP(o.ctx, o.workspace, md, good); err != nil || again.ID != o.conn.ID {
		t.Fatalf("reconnect: %+v, %v", again, err)
	}
	o.deliver(message("ann@example.com", "Back", "b1@example.com", "", "hi"))
	o.sync(o.worker())
	if len(o.tickets()["Back"]) != 1 || o.imapConnection().Status != helpdeskflow.ConnectionActive {
		t.Fatalf("not resumed: %+v", o.imapConnection())
	}
}

// A connect that both servers refuse names each server's field apart:
// here the local Dovecot (IMAP over TLS) and Postfix (SMTP with STARTTLS)
// of the test profile, whose certificate the manager does not trust. Each
// detail says the certificate's authority is unknown (not a wrong security
// setting) and how to add a private CA, and the message names both.
func TestOutlook_RefusedConnectNamesEachServer(t *testing.T) {
	f := newFixture(t)
	env := imapmailtest.Env(t)
	loop := imapmailtest.SMTPEnv(t)
	box := imapmailtest.NewMailbox(t, env)
	settings := env.Settings(imapmail.SecurityTLS, box)
	settings.SMTPHost, settings.SMTPPort, settings.SMTPSecurity = loop.Host, loop.Port, imapmail.SecurityStartTLS
	untrusting := f.manager(imapmail.WithTLSConfig(&tls.Config{RootCAs: x509.NewCertPool()}))
	_, err := untrusting.ConnectIMAP(f.ctx, f.workspace, md, settings)
	d := helpdeskflow.ErrorDetails(err)
	if helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation || len(d) != 2 || d[0].Field != "imap_security" || d[1].Field != "smtp_security" {
		t.Fatalf("connect: %v: %+v", err, d)
	}
	for _, p := range d {
		if !strings.Contains(p.Problem, "authority HelpDeskFlow does not trust") || !strings.Contains(p.Problem, "HDF_EXTRA_CA_FILE") {
			t.Errorf("%s: %s", p.Field, p.Problem)
		}
	}
	if msg := helpdeskflow.ErrorMessage(err); !strings.Contains(msg, "imap tls, smtp tls") {
		t.Errorf("message %q does not name both servers", msg)
	}

	// Trusting the profile's CA, the same settings connect.
	trusting := f.manager(imapmail.WithTLSConfig(imapmailtest.TLSConfig(env.CAPEM)))
	if c, err := trusting.ConnectIMAP(f.ctx, f.workspace, md, settings); err != nil || c.Status != helpdeskflow.ConnectionActive {
		t.Fatalf("connect trusting the CA: %+v, %v", c, err)
	}
}

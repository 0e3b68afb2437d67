package mailsync_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

func (f *fixture) replyWorker(client *http.Client) *mailsync.ReplyWorker {
	return mailsync.NewReplyWorker(mailsync.ReplyConfig{Store: f.store, Tickets: f.svc.Tickets, Tokens: f.m, GmailBaseURL: f.gmail.URL(),
		HTTPClient: client, Now: f.clock.Now, MessageIDDomain: "helpdesk.acme.test"})
}

var md = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: "k"}, Channel: helpdeskflow.ChannelAPI}

func (f *fixture) reply(ticket helpdeskflow.Ticket, body string, internal bool) {
	f.t.Helper()
	if _, err := f.svc.Tickets.AddMessage(f.ctx, f.workspace, md, ticket.ID, nil, tickets.AddMessage{Body: body, AuthorType: helpdeskflow.AuthorAgent, Internal: internal}, true); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sendDue(w *mailsync.ReplyWorker) int {
	f.t.Helper()
	n, err := w.SendDue(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestReplies_SentThroughGmailInTheThread(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	threadID := f.gmail.Deliver(message("Ann <ann@example.com>", "Refund", "a1@example.com", "", "I want a refund."), "")
	f.syncOnce(w)
	ticket := f.tickets()["Refund"][0]

	f.reply(ticket, "<p>Refund <b>done</b>.</p>", false)
	f.reply(ticket, "internal note: do not send", true)
	replies := f.replyWorker(nil)
	if n := f.sendDue(replies); n != 1 {
		t.Fatalf("sent %d replies; want the public one only", n)
	}
	sent := f.gmail.Sent()
	if len(sent) != 1 || sent[0].RequestThreadID != threadID {
		t.Fatalf("sent: %+v (thread %s)", sent, threadID)
	}
	m, err := mail.Parse(sent[0].Raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.InReplyTo != "a1@example.com" || m.Subject != "Re: Refund" || m.From.Email != mailbox || len(m.To) != 1 ||
		m.To[0].Email != "ann@example.com" || !strings.Contains(m.HTMLBody, "<b>done</b>") || !strings.Contains(m.TextBody, "Refund done.") ||
		!strings.HasSuffix(m.MessageID, "@helpdesk.acme.test") {
		t.Fatalf("reply: %+v", m)
	}
	if n := f.sendDue(replies); n != 0 {
		t.Fatalf("a sent reply was sent again")
	}

	// The customer answers the reply: it joins the ticket by the reply's
	// Message-Id; the sent copy in the mailbox is no ticket.
	f.gmail.Deliver(message("ann@example.com", "Re: Refund", "a2@example.com", m.MessageID, "Thanks!"), "")
	f.syncOnce(w)
	got := f.tickets()
	if len(got) != 1 || len(got["Refund"][0].Messages) != 4 {
		t.Fatalf("after the answer: %v, %d messages", keys(got), len(got["Refund"][0].Messages))
	}
}

// flakyTransport sends requests but reports the first send as failed, as
// a connection cut after Gmail accepted the message does.
type flakyTransport struct{ failed atomic.Bool }

func (t *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/messages/send") && t.failed.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, errors.New("connection reset by peer")
	}
	return resp, err
}

func TestReplies_AnInterruptedSendIsNotRepeated(t *testing.T) {
	f := newFixture(t)
	f.gmail.Deliver(message("ann@example.com", "Hello", "h1@example.com", "", "Hi."), "")
	f.syncOnce(f.worker(nil))
	ticket := f.tickets()["Hello"][0]
	f.reply(ticket, "Hello back", false)

	replies := f.replyWorker(&http.Client{Transport: &flakyTransport{}})
	f.sendDue(replies)
	if len(f.gmail.Sent()) != 1 {
		t.Fatalf("the first attempt did not reach Gmail")
	}
	if n := f.sendDue(replies); n != 0 {
		t.Fatal("retried before the backoff")
	}
	f.clock.Advance(time.Minute)
	if n := f.sendDue(replies); n != 1 {
		t.Fatal("not retried after the backoff")
	}
	if len(f.gmail.Sent()) != 1 {
		t.Fatalf("the retry sent the reply again: %d sends", len(f.gmail.Sent()))
	}
	rs, err := f.store.MailReplies(f.ctx, f.workspace, ticket.ID)
	if err != nil || len(rs) != 1 || rs[0].Status != helpdeskflow.MailReplySent || rs[0].ExternalID != f.gmail.Sent()[0].ID {
		t.Fatalf("reply record: %+v, %v", rs, err)
	}
}

func TestReplies_WaitForAReconnect(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	f.gmail.Deliver(message("ann@example.com", "Hello", "h1@example.com", "", "Hi."), "")
	f.syncOnce(w)
	ticket := f.tickets()["Hello"][0]
	f.oauth.RevokeAll()
	f.syncOnce(w) // finds the grant gone: token_expired
	f.reply(ticket, "Hello back", false)
	replies := f.replyWorker(nil)
	f.sendDue(replies)
	rs, _ := f.store.MailReplies(f.ctx, f.workspace, ticket.ID)
	if len(rs) != 1 || rs[0].Status != helpdeskflow.MailReplyPending || !strings.Contains(rs[0].LastError, "token_expired") {
		t.Fatalf("reply while disconnected: %+v", rs)
	}
	f.connect()
	f.clock.Advance(time.Minute)
	f.sendDue(replies)
	if rs, _ := f.store.MailReplies(f.ctx, f.workspace, ticket.ID); len(f.gmail.Sent()) != 1 || rs[0].Status != helpdeskflow.MailReplySent {
		t.Fatalf("after reconnecting: %+v, %d sent", rs, len(f.gmail.Sent()))
	}
}

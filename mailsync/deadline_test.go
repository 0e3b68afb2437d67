package mailsync_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
)

// redirected opens a connection's settings through the manager, then
// points their IMAP or SMTP side at a slow server.
type redirected struct {
	*integrations.Manager
	imap, smtp *imapmailtest.SlowServer
}

func (r redirected) IMAPSettings(ctx context.Context, workspaceID, id uuid.UUID) (imapmail.Settings, error) {
	s, err := r.Manager.IMAPSettings(ctx, workspaceID, id)
	if r.imap != nil {
		r.imap.ApplyIMAP(&s)
	}
	if r.smtp != nil {
		r.smtp.ApplySMTP(&s)
	}
	return s, err
}

// syncLease returns the connection's sync lease (nil when none is held).
func (f *fixture) syncLease(id uuid.UUID) *time.Time {
	f.t.Helper()
	var lease *time.Time
	if err := f.db.Pool().QueryRow(f.ctx, `SELECT sync_lease_until FROM integration_connections WHERE id = $1`, id).Scan(&lease); err != nil {
		f.t.Fatal(err)
	}
	return lease
}

// safetyContext bounds a call far beyond any deadline the test sets: a
// worker that does not give up by itself runs until it ends, and the test
// fails.
func safetyContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// An IMAP server that drips a message body a byte at a time (faster than
// any step timeout could notice) holds a sync run only until the run's
// deadline: the run gives up, records the timeout, releases its lease
// (which it never extended), and the next run, against a healthy server,
// imports the mail.
func TestOutlook_SlowServerCannotHoldTheWorker(t *testing.T) {
	o := newOutlook(t)
	slow := imapmailtest.NewSlowIMAP(t, imapmailtest.DripBody, 10*time.Millisecond)
	settings := redirected{Manager: o.m, imap: slow}
	// A 2-second lease: each run has 1.5 s.
	w := mailsync.NewWorker(mailsync.Config{Store: o.store, Importer: o.svc.Tickets, Tokens: o.m, IMAP: settings, Now: o.clock.Now,
		Lease: 2 * time.Second})

	o.clock.Advance(61 * time.Second)
	claimed := o.clock.Now().Add(2 * time.Second).Truncate(time.Microsecond)
	leaseDuringRun := make(chan *time.Time, 1)
	go func() {
		<-slow.Dripping()
		var lease *time.Time
		if err := o.db.Pool().QueryRow(o.ctx, `SELECT sync_lease_until FROM integration_connections WHERE id = $1`, o.conn.ID).Scan(&lease); err != nil {
			t.Error(err)
		}
		leaseDuringRun <- lease
	}()
	ctx := safetyContext(t)
	if n, err := w.SyncDue(ctx); err != nil || n != 1 {
		t.Fatalf("synced %d mailboxes: %v", n, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run ended only with the test's context: it has no deadline of its own")
	}
	select {
	case <-slow.Dripping():
	default:
		t.Fatal("the server never dripped: the test proves nothing")
	}
	if l := <-leaseDuringRun; l == nil || !l.Equal(claimed) {
		t.Errorf("lease while the server dripped: %v, want the claim's %v", l, claimed)
	}
	c := o.imapConnection()
	if c.LastErrorClass != mailsync.ClassTimeout || c.SyncFailures != 1 || c.Status != helpdeskflow.ConnectionActive ||
		c.NextSyncAt == nil || !c.NextSyncAt.After(o.clock.Now()) || c.LastSyncAt != nil {
		t.Fatalf("connection after the slow run: %+v", c)
	}
	if lease := o.syncLease(o.conn.ID); lease != nil {
		t.Fatalf("the lease was not released: %v", lease)
	}

	// Another process takes over once the backoff has passed, and a
	// healthy server's mail is imported.
	o.deliver(message("ann@example.com", "After the slow server", "after-slow@example.com", "", "hi"))
	o.clock.Advance(5 * time.Minute)
	if n, err := o.worker().SyncDue(o.ctx); err != nil || n != 1 {
		t.Fatalf("take-over: %d, %v", n, err)
	}
	if len(o.tickets()["After the slow server"]) != 1 || o.imapConnection().LastError != "" {
		t.Fatalf("not imported after the take-over: %+v", o.imapConnection())
	}
}

// stallingImporter imports through the service until after imports, then
// holds the next import until its context ends, as a server that stops
// answering in the middle of a run does.
type stallingImporter struct {
	svc   *testenv.Commands
	mu    sync.Mutex
	after int
}

func (s *stallingImporter) ImportMail(ctx context.Context, ws uuid.UUID, md helpdeskflow.Metadata, cmd tickets.ImportMail) (tickets.ImportResult, error) {
	s.mu.Lock()
	stall := s.after == 0
	s.after--
	s.mu.Unlock()
	if stall {
		<-ctx.Done()
		return tickets.ImportResult{}, ctx.Err()
	}
	return s.svc.Tickets.ImportMail(ctx, ws, md, cmd)
}

// syncResults keeps the results a worker tells it (mailsync.SyncRecorder).
type syncResults struct {
	mu  sync.Mutex
	got []helpdeskflow.MailSyncFact
}

func (r *syncResults) RecordMailSync(f helpdeskflow.MailSyncFact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, f)
}

// The run deadline bounds Gmail runs too. A run that reaches it after
// importing something is not a failure: it is due again at once, keeps the
// time of the last full sync (so the window it reads stays the same), and
// the next runs import the rest, nothing twice. One that imported nothing
// fails with class timeout. Each run's result is told as a service fact.
func TestGmail_RunDeadline(t *testing.T) {
	f := newFixture(t)
	subjects := f.deliverThreads(4, "Deadline")
	results := &syncResults{}
	lease := func(c *mailsync.Config) { c.Lease, c.Results = 2*time.Second, results }

	ctx := safetyContext(t)
	f.clock.Advance(21 * time.Second)
	if _, err := f.worker(&stallingImporter{svc: f.svc, after: 5}, lease).SyncDue(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run ended only with the test's context: it has no deadline of its own")
	}
	c := f.connection()
	if c.LastError != "" || c.SyncFailures != 0 || c.LastSyncAt != nil || c.NextSyncAt == nil || c.NextSyncAt.After(f.clock.Now()) {
		t.Fatalf("after a run cut short by its deadline: %+v", c)
	}
	if lease := f.syncLease(f.conn.ID); lease != nil {
		t.Fatalf("the lease was not released: %v", lease)
	}
	if got := f.tickets(); len(got) == 0 || len(got) == len(subjects) {
		t.Fatalf("the cut run made %d tickets; want some", len(got))
	}
	if n, err := f.worker(nil, func(c *mailsync.Config) { c.Results = results }).SyncDue(f.ctx); err != nil || n != 1 { // due at once, same clock
		t.Fatalf("not due again at once: %d, %v", n, err)
	}
	f.checkThreads(subjects)
	if c := f.connection(); c.LastSyncAt == nil || c.LastError != "" {
		t.Fatalf("after the full run: %+v", c)
	}

	// A run that imports nothing before its deadline fails.
	f.gmail.Deliver(message("ann@example.com", "Stuck", "stuck@example.com", "", "hi"), "")
	f.clock.Advance(21 * time.Second)
	if _, err := f.worker(&stallingImporter{svc: f.svc}, lease).SyncDue(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("stalled run: %v (test context: %v)", err, ctx.Err())
	}
	if c := f.connection(); c.LastErrorClass != mailsync.ClassTimeout || c.SyncFailures != 1 || !strings.Contains(c.LastError, "deadline") {
		t.Fatalf("after a run that imported nothing: %+v", c)
	}
	// The cut run imported 5 messages and failed the sixth; the full run
	// the rest; the stalled one nothing.
	if len(results.got) != 3 {
		t.Fatalf("results told: %+v", results.got)
	}
	cut, full, stalled := results.got[0], results.got[1], results.got[2]
	if cut.Outcome != helpdeskflow.SyncPartial || cut.Imported != 5 || cut.Failed != 1 || cut.ErrorClass != "" ||
		cut.ConnectionID != f.conn.ID || cut.WorkspaceID != f.workspace || cut.Provider != mailsync.ProviderGmail || cut.RunID == uuid.Nil {
		t.Errorf("cut run: %+v", cut)
	}
	if full.Outcome != helpdeskflow.SyncSucceeded || full.Imported == 0 || full.Failed != 0 || full.RunID == cut.RunID {
		t.Errorf("full run: %+v", full)
	}
	if stalled.Outcome != helpdeskflow.SyncFailed || stalled.ErrorClass != mailsync.ClassTimeout || stalled.Imported != 0 || stalled.Failed != 1 ||
		!stalled.Time.Equal(f.clock.Now().UTC().Truncate(time.Microsecond)) {
		t.Errorf("stalled run: %+v (clock %s)", stalled, f.clock.Now())
	}
}

// A reply whose SMTP server drips its answer to the message is abandoned
// before the reply's lease runs out: no other worker claims it meanwhile,
// so it is sent once, and the attempt is recorded as a timeout, to be
// retried after the backoff.
func TestOutlook_SlowSMTPDoesNotSendAReplyTwice(t *testing.T) {
	o := newOutlook(t)
	o.deliver(message("ann@example.com", "Printer", "pr1@example.com", "", "Help"))
	o.sync(o.worker())
	ticket := o.tickets()["Printer"][0]
	o.reply(ticket, "On our way", false)

	slow := imapmailtest.NewSlowSMTP(t, imapmailtest.DripDataReply, 10*time.Millisecond)
	settings := redirected{Manager: o.m, smtp: slow}
	// Both workers run on a clock that moves with real time (the reply's
	// attempt deadline does), set so that the reply is due.
	offset := o.clock.Now().Sub(time.Now()) + time.Second
	now := func() time.Time { return time.Now().Add(offset) }
	newWorker := func() *mailsync.ReplyWorker {
		return mailsync.NewReplyWorker(mailsync.ReplyConfig{Store: o.store, Tickets: o.svc.Tickets, Tokens: o.m, IMAP: settings, Now: now,
			MessageIDDomain: "helpdesk.acme.test", Lease: 2 * time.Second, SendTimeout: time.Minute})
	}
	first, second := newWorker(), newWorker()

	ctx := safetyContext(t)
	done := make(chan error, 1)
	go func() {
		_, err := first.SendDue(ctx)
		done <- err
	}()
	<-slow.Dripping()
	rs, err := o.store.MailReplies(o.ctx, o.workspace, ticket.ID)
	if err != nil || len(rs) != 1 || rs[0].Status != helpdeskflow.MailReplySending {
		t.Fatalf("reply while being sent: %+v, %v", rs, err)
	}
	lease := rs[0].NextAttemptAt
	// The second worker keeps trying until the first has given up and
	// the first attempt's lease has run out.
	firstDone, claimedBySecond := false, 0
	for !firstDone || !now().After(lease) {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			firstDone = true
		case <-time.After(20 * time.Millisecond):
		}
		n, err := second.SendDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		claimedBySecond += n
		if slow.Messages() > 1 {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the first attempt ended only with the test's context")
	}
	if got := slow.Messages(); got != 1 || claimedBySecond != 0 {
		t.Fatalf("the SMTP server received the reply %d times; the second worker claimed %d", got, claimedBySecond)
	}
	rs, err = o.store.MailReplies(o.ctx, o.workspace, ticket.ID)
	if err != nil || len(rs) != 1 || rs[0].Status != helpdeskflow.MailReplyPending || rs[0].Attempts != 1 ||
		!strings.Contains(rs[0].LastError, "timed out") || !rs[0].NextAttemptAt.After(lease) {
		t.Fatalf("reply after the slow attempt: %+v, %v", rs, err)
	}
}

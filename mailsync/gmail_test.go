package mailsync_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail/gmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/integrations/integrationstest"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

const mailbox = "support@acme.test"

// fixture is a workspace with a Gmail connection to a fake mailbox, on a
// real Postgres.
type fixture struct {
	t         *testing.T
	ctx       context.Context
	store     testenv.Rooms
	db        *pg.DB
	svc       *testenv.Commands
	oauth     *oauthtest.Server
	gmail     *gmailtest.Server
	clock     *testenv.Clock
	m         *integrations.Manager
	keys      *secretbox.Keyring
	workspace uuid.UUID
	conn      helpdeskflow.Connection
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store := testenv.NewRooms(t)
	db := store.DB
	fake := oauthtest.NewServer()
	t.Cleanup(fake.Close)
	gm := gmailtest.NewServer()
	t.Cleanup(gm.Close)
	gm.SetAddress(mailbox)
	gm.SetTokenCheck(fake.ValidAccessToken)
	spec, _ := secretbox.NewKey("t1")
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.NewClock(time.Now().UTC())
	svc := testenv.NewCommands(store.EventStore, testenv.CommandOptions{Clock: c.Now})
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}
	ws, _, err := svc.Access.CreateWorkspace(context.Background(), md, "mail")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), store: store, db: db, svc: svc, oauth: fake, gmail: gm, clock: c, keys: keys, workspace: ws}
	f.m = f.manager()
	f.conn = f.connect()
	return f
}

// manager returns a Manager of the fixture's store, keys and fake OAuth
// server, with IMAP clients taking opts.
func (f *fixture) manager(opts ...imapmail.Option) *integrations.Manager {
	f.t.Helper()
	m, err := integrations.New(integrations.Config{Store: integrations.AdaptStore(f.store.ConnectionStore), Sealer: f.keys,
		Providers: map[string]oauth.Provider{"google": f.oauth.Provider("google")}, StateKey: bytes.Repeat([]byte("k"), 32), Now: f.clock.Now,
		IMAPOptions: append([]imapmail.Option{imapmailtest.AllowLoopback}, opts...)})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// connect runs the OAuth flow for Google (again, to reconnect).
func (f *fixture) connect() helpdeskflow.Connection {
	f.t.Helper()
	return integrationstest.Connect(f.t, f.m, f.oauth, f.workspace, "google", "")
}

func (f *fixture) worker(importer mailsync.Importer, mods ...func(*mailsync.Config)) *mailsync.Worker {
	if importer == nil {
		importer = f.svc.Tickets
	}
	cfg := mailsync.Config{Store: f.store, Importer: importer, Tokens: f.m, GmailBaseURL: f.gmail.URL(), Now: f.clock.Now}
	for _, m := range mods {
		m(&cfg)
	}
	return mailsync.NewWorker(cfg)
}

// syncOnce makes the mailbox due and syncs it with w.
func (f *fixture) syncOnce(w *mailsync.Worker) int {
	f.t.Helper()
	f.clock.Advance(21 * time.Second)
	n, err := w.SyncDue(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) connection() helpdeskflow.Connection {
	f.t.Helper()
	c, err := f.store.Connection(f.ctx, f.workspace, f.conn.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// tickets returns the workspace's tickets by subject, from the event store.
func (f *fixture) tickets() map[string][]helpdeskflow.Ticket {
	f.t.Helper()
	rows, err := f.db.Pool().Query(f.ctx, `SELECT stream_id FROM events WHERE workspace_id = $1 AND type = 'ticket.created'`, f.workspace)
	if err != nil {
		f.t.Fatal(err)
	}
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := map[string][]helpdeskflow.Ticket{}
	for _, id := range ids {
		t, err := f.svc.Tickets.GetTicket(f.ctx, f.workspace, id, true)
		if err != nil {
			f.t.Fatal(err)
		}
		out[t.Subject] = append(out[t.Subject], t)
	}
	return out
}

// message writes a raw email.
func message(from, subject, messageID, inReplyTo, body string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\n", from, mailbox, subject, messageID,
		time.Now().UTC().Format(time.RFC1123Z))
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", inReplyTo, inReplyTo)
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n")
	return []byte(b.String())
}

func TestGmail_ThreadsBecomeTicketsAndMessages(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	f.gmail.Deliver(message("Ann Lee <Ann@Example.com>", "Refund for order 1001", "a1@example.com", "", "Hello,\n\nI want a refund <please>."), "")
	if n := f.syncOnce(w); n != 1 {
		t.Fatalf("synced %d mailboxes", n)
	}
	got := f.tickets()
	ticket := got["Refund for order 1001"]
	if len(ticket) != 1 || ticket[0].Channel != helpdeskflow.TicketChannelEmail || ticket[0].Customer.Email != "ann@example.com" ||
		ticket[0].Customer.Name != "Ann Lee" || ticket[0].MailboxID == nil || *ticket[0].MailboxID != f.conn.ID {
		t.Fatalf("tickets after the first mail: %+v", got)
	}
	if body := ticket[0].Messages[0].Body; !strings.Contains(body, "I want a refund &lt;please&gt;.") {
		t.Errorf("body not kept as escaped text: %q", body)
	}
	c := f.connection()
	if c.LastSyncAt == nil || c.LastError != "" || len(c.SyncState) == 0 {
		t.Errorf("connection after a good run: %+v", c)
	}

	// A reply in the thread joins the ticket, without the quoted history;
	// a new subject from someone else is a new ticket; an auto-reply and
	// a message from the mailbox itself make nothing.
	f.gmail.Deliver(message("ann@example.com", "Re: Refund for order 1001", "a2@example.com", "a1@example.com",
		"Any news?\n\nOn Mon, Ann wrote:\n> Hello,\n> I want a refund."), "")
	f.gmail.Deliver(message("bob@example.org", "Login broken", "b1@example.org", "", "Cannot log in."), "")
	f.gmail.Deliver(message("ann@example.com", "Out of office", "a3@example.com", "", "Away.", "Auto-Submitted: auto-replied"), "")
	f.gmail.Deliver(message(mailbox, "Note to self", "s1@acme.test", "", "internal"), "")
	f.syncOnce(w)
	got = f.tickets()
	if len(got) != 2 || len(got["Login broken"]) != 1 {
		t.Fatalf("tickets: %v", keys(got))
	}
	refund := got["Refund for order 1001"][0]
	if len(refund.Messages) != 2 || refund.Messages[1].AuthorType != helpdeskflow.AuthorCustomer ||
		!strings.Contains(refund.Messages[1].BodyText, "Any news?") || strings.Contains(refund.Messages[1].BodyText, "I want a refund") {
		t.Fatalf("refund ticket messages: %+v", refund.Messages)
	}

	// Nothing new: a run imports nothing and fetches no message.
	gets := f.gmail.Calls()["users.messages.get"]
	f.syncOnce(w)
	if f.gmail.Calls()["users.messages.get"] != gets || len(f.tickets()) != 2 {
		t.Errorf("an idle run fetched messages or made tickets")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// crashingImporter imports through the service and "kills the process"
// (cancels the run's context) after n imports.
type crashingImporter struct {
	svc    *testenv.Commands
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func (c *crashingImporter) ImportMail(ctx context.Context, ws uuid.UUID, md helpdeskflow.Metadata, cmd tickets.ImportMail) (tickets.ImportResult, error) {
	res, err := c.svc.Tickets.ImportMail(ctx, ws, md, cmd)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return res, err
}

// deliverThreads delivers n threads of three messages each (first, reply,
// reply to the reply) and returns their subjects.
func (f *fixture) deliverThreads(n int, prefix string) []string {
	var subjects []string
	for i := range n {
		subject := fmt.Sprintf("%s %d", prefix, i)
		root := fmt.Sprintf("%s-%d@example.com", strings.ToLower(prefix), i)
		f.gmail.Deliver(message(fmt.Sprintf("c%d@example.com", i), subject, root, "", "first"), "")
		f.gmail.Deliver(message(fmt.Sprintf("c%d@example.com", i), "Re: "+subject, "r1-"+root, root, "second"), "")
		f.gmail.Deliver(message(fmt.Sprintf("c%d@example.com", i), "Re: "+subject, "r2-"+root, "r1-"+root, "third"), "")
		subjects = append(subjects, subject)
	}
	return subjects
}

// checkThreads fails unless each subject is exactly one ticket with
// exactly three messages.
func (f *fixture) checkThreads(subjects []string) {
	f.t.Helper()
	got := f.tickets()
	for _, s := range subjects {
		if len(got[s]) != 1 || len(got[s][0].Messages) != 3 {
			n := 0
			if len(got[s]) > 0 {
				n = len(got[s][0].Messages)
			}
			f.t.Fatalf("%q: %d tickets, the first with %d messages (want 1 with 3)", s, len(got[s]), n)
		}
	}
	if len(got) != len(subjects) {
		f.t.Fatalf("%d tickets for %d threads: %v", len(got), len(subjects), keys(got))
	}
}

func TestGmail_CrashMidSyncLosesAndDuplicatesNothing(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	f.syncOnce(w) // the cursor is set: what follows comes through the history
	subjects := f.deliverThreads(10, "Crash")

	// The process dies after 7 of 30 imports, holding the lease and
	// before the new history id is stored.
	ctx, cancel := context.WithCancel(f.ctx)
	crashing := f.worker(&crashingImporter{svc: f.svc, n: 7, cancel: cancel})
	f.clock.Advance(21 * time.Second)
	if _, err := crashing.SyncDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(f.tickets()); got == 0 || got == 10 {
		t.Fatalf("the crash left %d tickets; want some but not all", got)
	}
	// Within the lease nobody takes over; after it, another process does
	// and finishes from the stored cursor.
	other := f.worker(nil)
	if n := f.syncOnce(other); n != 0 {
		t.Fatalf("a leased mailbox was synced by another process")
	}
	f.clock.Advance(2 * time.Minute)
	if n := f.syncOnce(other); n != 1 {
		t.Fatalf("the lease did not run out")
	}
	f.checkThreads(subjects)
	// Repeating the whole run from the old cursor changes nothing.
	f.syncOnce(other)
	f.checkThreads(subjects)
}

func TestGmail_TwoProcessesMakeNoDuplicates(t *testing.T) {
	f := newFixture(t)
	f.syncOnce(f.worker(nil))
	subjects := f.deliverThreads(15, "Race")
	// Two processes whose clocks disagree by more than the lease both
	// claim the mailbox and import the same history at the same time.
	behind := f.worker(nil)
	aheadClock := func() time.Time { return f.clock.Now().Add(3 * time.Minute) }
	ahead := f.worker(nil, func(c *mailsync.Config) { c.Now = aheadClock })
	f.clock.Advance(21 * time.Second)
	var wg sync.WaitGroup
	claimed := make([]int, 2)
	for i, w := range []*mailsync.Worker{behind, ahead} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := w.SyncDue(f.ctx)
			if err != nil {
				t.Error(err)
			}
			claimed[i] = n
		}()
	}
	wg.Wait()
	f.clock.Advance(5 * time.Minute)
	f.syncOnce(behind)
	f.checkThreads(subjects)
	if claimed[0]+claimed[1] < 1 {
		t.Fatalf("no process synced")
	}
}

func TestGmail_RateLimitBacksOff(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	f.syncOnce(w)
	f.gmail.Deliver(message("ann@example.com", "Slow down", "sd@example.com", "", "hi"), "")
	f.gmail.RateLimitNext(1, 90*time.Second, false)
	f.syncOnce(w)
	c := f.connection()
	if c.LastErrorClass != mailsync.ClassRateLimited || c.NextSyncAt == nil || c.NextSyncAt.Sub(f.clock.Now()) < 85*time.Second ||
		c.Status != helpdeskflow.ConnectionActive || !strings.Contains(integrations.Explain(c), "rate limit") {
		t.Fatalf("after a 429: %+v (%s)", c, integrations.Explain(c))
	}
	if n := f.syncOnce(w); n != 0 {
		t.Fatalf("synced before Retry-After")
	}
	f.clock.Advance(90 * time.Second)
	f.syncOnce(w)
	if len(f.tickets()["Slow down"]) != 1 || f.connection().LastError != "" {
		t.Fatalf("not imported after the wait: %+v", f.connection())
	}
	// 403 rateLimitExceeded is a rate limit too.
	f.gmail.RateLimitNext(1, 0, true)
	f.syncOnce(w)
	if c := f.connection(); c.LastErrorClass != mailsync.ClassRateLimited || c.SyncFailures != 1 {
		t.Fatalf("after a 403: %+v", c)
	}
}

func TestGmail_TokenExpiredStopsSyncsUntilReconnected(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	f.syncOnce(w)
	f.gmail.Deliver(message("ann@example.com", "Before", "before@example.com", "", "hi"), "")
	f.syncOnce(w)
	// The user removes the app's access at Google.
	f.oauth.RevokeAll()
	f.gmail.Deliver(message("ann@example.com", "While revoked", "during@example.com", "", "hi"), "")
	f.syncOnce(w)
	c := f.connection()
	if c.Status != helpdeskflow.ConnectionTokenExpired {
		t.Fatalf("after revocation: %+v", c)
	}
	events, err := f.store.Load(f.ctx, f.workspace, f.workspace)
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, e := range events {
		if e.Type == helpdeskflow.EventIntegrationTokenExpired {
			expired++
		}
	}
	refreshes := f.oauth.Refreshes()
	for range 3 {
		f.clock.Advance(time.Hour)
		if n, _ := w.SyncDue(f.ctx); n != 0 {
			t.Fatal("a token_expired mailbox was synced")
		}
	}
	if expired != 1 || f.oauth.Refreshes() != refreshes || len(f.tickets()["While revoked"]) != 0 {
		t.Fatalf("%d token_expired events, %d refreshes after (want none)", expired, f.oauth.Refreshes()-refreshes)
	}
	// Reconnecting resumes from the stored cursor: the mail that came
	// meanwhile is imported, nothing twice.
	f.gmail.Deliver(message("ann@example.com", "After", "after@example.com", "", "hi"), "")
	if again := f.connect(); again.ID != f.conn.ID {
		t.Fatalf("reconnect made a new connection")
	}
	if n, err := w.SyncDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("reconnected mailbox not due at once: %d, %v", n, err)
	}
	got := f.tickets()
	if len(got) != 3 || len(got["Before"]) != 1 || len(got["While revoked"]) != 1 || len(got["After"]) != 1 {
		t.Fatalf("after reconnecting: %v", keys(got))
	}
	if c := f.connection(); c.Status != helpdeskflow.ConnectionActive || c.LastError != "" {
		t.Fatalf("connection after reconnecting: %+v", c)
	}
}

func TestGmail_HistoryTooOldFallsBackToTheWindow(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	f.gmail.Deliver(message("ann@example.com", "Already here", "old@example.com", "", "hi"), "")
	f.syncOnce(w) // the first sync lists the window
	if len(f.tickets()["Already here"]) != 1 {
		t.Fatalf("first sync did not read the window: %v", keys(f.tickets()))
	}
	f.gmail.Deliver(message("ann@example.com", "Missed", "missed@example.com", "", "hi"), "")
	f.gmail.ExpireHistoryBefore(f.gmail.HistoryID() + 1)
	f.syncOnce(w)
	got := f.tickets()
	if len(got) != 2 || len(got["Missed"]) != 1 || len(got["Already here"]) != 1 {
		t.Fatalf("after the fallback: %v", keys(got))
	}
	f.gmail.Deliver(message("ann@example.com", "Later", "later@example.com", "", "hi"), "")
	f.syncOnce(w)
	if len(f.tickets()["Later"]) != 1 {
		t.Fatalf("the history was not resumed after the fallback")
	}
}

func TestGmail_ConflictingAutomationsDoNotStallTheMailbox(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	metrics, err := mailsync.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	w := f.worker(nil, func(c *mailsync.Config) { c.Metrics = metrics })
	f.syncOnce(w)
	// Two rules that fire on every ticket and disagree about its priority.
	for _, p := range []string{"high", "low"} {
		if _, err := f.svc.Rules.CreateAutomation(f.ctx, f.workspace, md, rules.AutomationRule{Name: "set " + p,
			Actions: []automation.Action{{Type: "set_priority", Value: p}}}); err != nil {
			t.Fatal(err)
		}
	}
	f.gmail.Deliver(message("ann@example.com", "Conflicted", "c1@example.com", "", "hi"), "")
	f.gmail.Deliver(message("bob@example.com", "After it", "c2@example.com", "", "hi"), "")
	f.syncOnce(w)
	got := f.tickets()
	if len(got["Conflicted"]) != 1 || len(got["After it"]) != 1 || got["Conflicted"][0].Priority != helpdeskflow.PriorityNormal {
		t.Fatalf("tickets: %v", keys(got))
	}
	if c := f.connection(); c.LastError != "" {
		t.Fatalf("the conflict failed the run: %+v", c)
	}
	if n := testenv.Metric(t, reg, "helpdeskflow_mail_items_imported_total", "provider", "google", "result", "automation_conflict"); n != 2 {
		t.Errorf("automation_conflict count: %v", n)
	}
	if n := testenv.Metric(t, reg, "helpdeskflow_mail_sync_runs_total", "outcome", "ok"); n != 2 {
		t.Errorf("good runs: %v", n)
	}
	if n := testenv.Metric(t, reg, "helpdeskflow_mail_sync_lag_seconds", "provider", "google"); n <= 0 {
		t.Errorf("no lag gauge for the mailbox")
	}
}

// A message over the size cap (Gmail accepts up to 50 MB from other
// providers) is recorded as skipped with the reason, without being
// downloaded, and the mail around it is imported: it never stalls the
// mailbox.
func TestGmail_TooLargeMessageIsSkipped(t *testing.T) {
	f := newFixture(t)
	w := f.worker(nil)
	f.gmail.Deliver(message("ann@example.com", "Before", "before-big@example.com", "", "hi"), "")
	big := message("bob@example.com", "Huge attachment", "big@example.com", "", strings.Repeat("x", 40<<20))
	bigID := f.gmail.Deliver(big, "")
	f.gmail.Deliver(message("cat@example.com", "After", "after-big@example.com", "", "hi"), "")
	f.syncOnce(w)
	got := f.tickets()
	if len(got) != 2 || len(got["Before"]) != 1 || len(got["After"]) != 1 {
		t.Fatalf("tickets: %v", keys(got))
	}
	if c := f.connection(); c.LastError != "" {
		t.Fatalf("the run failed: %+v", c)
	}
	var skipped string
	if err := f.db.Pool().QueryRow(f.ctx, `SELECT skipped FROM mail_messages WHERE connection_id = $1 AND external_id = $2`,
		f.conn.ID, bigID).Scan(&skipped); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(skipped, mailsync.SkipTooLarge+": about "+fmt.Sprint(len(big))) {
		t.Fatalf("recorded as %q", skipped)
	}
}

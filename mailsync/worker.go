package mailsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// Providers whose connections are mailboxes.
const (
	ProviderGmail   = "google"
	ProviderOutlook = "outlook"
)

// Store is the event store as the sync uses it.
type Store interface {
	ClaimMailboxes(ctx context.Context, providers []string, now, leaseUntil time.Time, limit int) ([]helpdeskflow.Connection, error)
	SaveSyncState(ctx context.Context, id uuid.UUID, lease time.Time, state []byte) (bool, error)
	FinishMailboxSync(ctx context.Context, id uuid.UUID, lease time.Time, o helpdeskflow.SyncOutcome) (int, bool, error)
	// ImportedMail returns which of ids the mailbox has recorded.
	ImportedMail(ctx context.Context, connectionID uuid.UUID, ids []string) (map[string]bool, error)
}

// Importer makes tickets and messages of mail (tickets.Service).
type Importer interface {
	ImportMail(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.ImportMail) (tickets.ImportResult, error)
}

// Tokens hands out OAuth access tokens (integrations.Manager).
type Tokens interface {
	AccessToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error)
	// RefreshToken refreshes now: the provider refused a token that
	// should be good.
	RefreshToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error)
	// ConnectionFailed stops a connection that only a person can fix
	// (status needs_revalidation), recording the integration event.
	ConnectionFailed(ctx context.Context, workspaceID, id uuid.UUID, status, class, message string) error
}

// SyncRecorder is told how each sync run ended, for the analytics
// (recordlog.Logger publishes it as a service fact). It must return at
// once and never fail.
type SyncRecorder interface {
	RecordMailSync(helpdeskflow.MailSyncFact)
}

// Config configures a Worker. Store, Importer and Tokens are required.
type Config struct {
	Store    Store
	Importer Importer
	Tokens   Tokens
	// IMAP opens Outlook connections' settings; nil leaves Outlook
	// mailboxes alone.
	IMAP IMAPSettings
	// GmailBaseURL is the Gmail API's (gmail.DefaultBaseURL when "");
	// HTTPClient makes its requests (60-second timeout when nil).
	GmailBaseURL string
	HTTPClient   *http.Client
	// Interval is how often a mailbox is synced, by provider: Gmail 20
	// seconds and Outlook 60 seconds when not given.
	Interval map[string]time.Duration
	// Poll is how often the worker looks for due mailboxes (1 second).
	Poll time.Duration
	// Lease is how long a run holds its mailbox before another process
	// may take over (2 minutes). Runs never extend it.
	Lease time.Duration
	// RunTimeout is each run's absolute deadline, three quarters of Lease
	// by default (90 seconds) and never longer, so that a run has ended,
	// and recorded how, before its lease runs out. A run that reaches it
	// after importing something is rescheduled at once and resumes from
	// its cursor; one that imported nothing fails with class timeout.
	RunTimeout time.Duration
	// Concurrency bounds the mailboxes synced at once by this worker (4).
	Concurrency int
	// Window is how far back a first sync, and a sync whose cursor is
	// lost, reads (7 days); MaxBackfill bounds how many messages it
	// reads (10,000).
	Window      time.Duration
	MaxBackfill int
	// MaxBackoff caps the wait after failed runs (15 minutes).
	MaxBackoff time.Duration
	// Results, when not nil, is told how each run ended (runs that
	// lost their lease or stopped with the worker are not told).
	Results SyncRecorder
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Worker syncs mailboxes. It is safe for concurrent use; any number of
// workers, in any number of processes, may run.
type Worker struct {
	cfg Config
}

// NewWorker returns a Worker, filling in Config's defaults.
func NewWorker(cfg Config) *Worker {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	intervals := map[string]time.Duration{ProviderGmail: 20 * time.Second, ProviderOutlook: 60 * time.Second}
	for p, d := range cfg.Interval {
		if d > 0 {
			intervals[p] = d
		}
	}
	cfg.Interval = intervals
	cfg.Poll = or(cfg.Poll, time.Second)
	cfg.Lease = or(cfg.Lease, 2*time.Minute)
	cfg.RunTimeout = min(or(cfg.RunTimeout, cfg.Lease*3/4), cfg.Lease*3/4)
	cfg.Window = or(cfg.Window, 7*24*time.Hour)
	cfg.MaxBackoff = or(cfg.MaxBackoff, 15*time.Minute)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxBackfill <= 0 {
		cfg.MaxBackfill = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Worker{cfg: cfg}
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (w *Worker) now() time.Time { return w.cfg.Now().UTC().Truncate(time.Microsecond) }

func (w *Worker) providers() []string {
	if w.cfg.IMAP == nil {
		return []string{ProviderGmail}
	}
	return []string{ProviderGmail, ProviderOutlook}
}

// Run syncs due mailboxes until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	return poll.Every(ctx, w.cfg.Poll, w.cfg.Logger, "mail sync: claiming mailboxes", w.SyncDue)
}

// SyncDue claims the mailboxes due now (up to Concurrency), syncs them and
// returns how many it synced, once every run has ended.
func (w *Worker) SyncDue(ctx context.Context) (int, error) {
	now := w.now()
	conns, err := w.cfg.Store.ClaimMailboxes(ctx, w.providers(), now, now.Add(w.cfg.Lease), w.cfg.Concurrency)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.sync(ctx, c, now.Add(w.cfg.Lease).Truncate(time.Microsecond))
		}()
	}
	wg.Wait()
	return len(conns), nil
}

// errLeaseLost ends a run whose mailbox another process took over.
var errLeaseLost = errors.New("the mailbox's sync lease ran out and another run took it over")

// run is one sync of one mailbox.
type run struct {
	w     *Worker
	conn  helpdeskflow.Connection
	lease time.Time
	md    helpdeskflow.Metadata
	// state is the cursor to store when the run ends (nil: unchanged).
	state []byte
	// imported counts what the run made, by result.
	imported map[string]int
	// failed counts the messages whose import failed (and ended the run).
	failed int
	// token is the access token the run uses, fetched at tokenAt.
	token   string
	tokenAt time.Time
}

// sync runs one sync of c under lease, within the run deadline, and
// records how it ended (with ctx: the deadline bounds the run only).
func (w *Worker) sync(ctx context.Context, c helpdeskflow.Connection, lease time.Time) {
	start := time.Now()
	r := &run{w: w, conn: c, lease: lease, imported: map[string]int{},
		md: helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorIntegration, ID: c.Provider + ":" + c.ID.String()},
			Channel: helpdeskflow.ChannelIntegration}}
	runCtx, cancel := context.WithTimeout(ctx, w.cfg.RunTimeout)
	var err error
	switch c.Provider {
	case ProviderGmail:
		err = r.syncGmail(runCtx)
	case ProviderOutlook:
		err = r.syncIMAP(runCtx)
	default:
		err = fmt.Errorf("no mail sync for provider %q", c.Provider)
	}
	overran := err != nil && errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	if errors.Is(err, errLeaseLost) || ctx.Err() != nil {
		w.cfg.Logger.Info("mail sync: run stopped", "connection", c.ID, "reason", err)
		return
	}
	now := w.now()
	outcome := helpdeskflow.SyncOutcome{State: r.state, At: now, NextSyncAt: now.Add(w.cfg.Interval[c.Provider])}
	var f failure
	switch {
	case err == nil:
	case overran && r.progressed():
		w.cfg.Logger.Info("mail sync: run reached its deadline; it continues at once from where it stopped", "connection", c.ID,
			"deadline", w.cfg.RunTimeout, "imported", r.imported)
		outcome.Partial, outcome.NextSyncAt, err = true, now, nil
	case overran:
		f = failure{class: ClassTimeout, message: fmt.Sprintf("The sync run did not finish within its %s deadline and imported nothing (%v): "+
			"the mail server answers too slowly. The sync retries with backoff.", w.cfg.RunTimeout, err)}
	default:
		f = r.classify(ctx, err)
	}
	if f.class != "" {
		outcome.ErrorClass, outcome.Error = f.class, f.message
		outcome.NextSyncAt = now.Add(max(f.retryAfter, w.backoff(c.Provider, c.SyncFailures+1)))
	}
	if _, ok, ferr := w.cfg.Store.FinishMailboxSync(ctx, c.ID, r.lease, outcome); ferr != nil {
		w.cfg.Logger.Warn("mail sync: recording the run failed", "connection", c.ID, "error", ferr)
	} else if !ok {
		w.cfg.Logger.Info("mail sync: run ended after its lease was taken over", "connection", c.ID)
		return
	}
	if f.status != "" {
		if err := w.cfg.Tokens.ConnectionFailed(ctx, c.WorkspaceID, c.ID, f.status, f.class, f.message); err != nil {
			w.cfg.Logger.Warn("mail sync: stopping the connection failed", "connection", c.ID, "error", err)
		}
	}
	w.cfg.Metrics.ran(c, f.class, r.imported, time.Since(start))
	w.recordResult(c, outcome, r, time.Since(start))
	if err != nil {
		w.cfg.Logger.Warn("mail sync: run failed", "connection", c.ID, "provider", c.Provider, "class", f.class,
			"next_sync_at", outcome.NextSyncAt, "error", err)
	}
}

// recordResult tells Results how the run of c ended.
func (w *Worker) recordResult(c helpdeskflow.Connection, o helpdeskflow.SyncOutcome, r *run, d time.Duration) {
	if w.cfg.Results == nil {
		return
	}
	result := helpdeskflow.SyncSucceeded
	switch {
	case o.ErrorClass != "":
		result = helpdeskflow.SyncFailed
	case o.Partial:
		result = helpdeskflow.SyncPartial
	}
	imported := r.imported
	w.cfg.Results.RecordMailSync(helpdeskflow.MailSyncFact{Time: o.At, RunID: uuid.New(), WorkspaceID: c.WorkspaceID,
		ConnectionID: c.ID, Provider: c.Provider, Imported: imported["ticket"] + imported["message"] + imported["automation_conflict"],
		Skipped: imported["skipped"], Duplicates: imported["duplicate"], Failed: r.failed,
		Outcome: result, ErrorClass: o.ErrorClass, Duration: d})
}

// backoff is the wait after the n-th failed run in a row: the interval
// doubled each time, capped by MaxBackoff.
func (w *Worker) backoff(provider string, n int) time.Duration {
	d := w.cfg.Interval[provider]
	for i := 1; i < n && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, w.cfg.MaxBackoff)
}

// checkpoint stores state, when not nil, as the cursor so far, and checks
// that the run still holds its lease (errLeaseLost when another run took
// over). It does not extend the lease: the run's deadline is shorter.
func (r *run) checkpoint(ctx context.Context, state []byte) error {
	ok, err := r.w.cfg.Store.SaveSyncState(ctx, r.conn.ID, r.lease, state)
	if err != nil {
		return err
	}
	if !ok {
		return errLeaseLost
	}
	if state != nil {
		r.state = state
	}
	return nil
}

// progressed reports whether the run has moved the mailbox on: imported
// (or skipped) a message, or stored a cursor.
func (r *run) progressed() bool {
	if r.state != nil {
		return true
	}
	for result, n := range r.imported {
		if result != "duplicate" && n > 0 {
			return true
		}
	}
	return false
}

// importMessage imports one message. Mail the commands refuse as invalid
// is recorded as skipped with the reason (and logged), so one bad message
// never stalls the mailbox; other errors end the run, which the next run
// retries.
func (r *run) importMessage(ctx context.Context, in tickets.ImportMail) error {
	res, err := r.w.cfg.Importer.ImportMail(ctx, r.conn.WorkspaceID, r.md, in)
	var despite *tickets.ImportedDespite
	switch {
	case err == nil:
	case errors.As(err, &despite):
		r.w.cfg.Logger.Warn("mail sync: imported a message without automations, which conflicted", "connection", r.conn.ID,
			"ticket", res.TicketID, "error", despite.Conflict)
		r.imported["automation_conflict"]++
	case helpdeskflow.ErrorCode(err) == helpdeskflow.EValidation:
		r.w.cfg.Logger.Warn("mail sync: skipping a message the help desk cannot take", "connection", r.conn.ID,
			"message", in.ExternalID, "error", err)
		in.Skip = SkipInvalid + ": " + helpdeskflow.ErrorMessage(err)
		if res, err = r.w.cfg.Importer.ImportMail(ctx, r.conn.WorkspaceID, r.md, in); err != nil {
			return err
		}
	default:
		r.failed++
		return fmt.Errorf("import message %s: %w", in.ExternalID, err)
	}
	if res.ThreadRefused != "" {
		r.w.cfg.Logger.Info("mail sync: a message names an existing ticket's thread but its sender may not write to it; it made a new ticket",
			"connection", r.conn.ID, "message", in.ExternalID, "ticket", res.TicketID, "reason", res.ThreadRefused)
	}
	switch {
	case res.Duplicate:
		r.imported["duplicate"]++
	case res.Skipped:
		r.imported["skipped"]++
	case res.Created:
		r.imported["ticket"]++
	default:
		r.imported["message"]++
	}
	return nil
}

// newIDs returns those of ids the mailbox has not recorded, in order.
func (r *run) newIDs(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	known, err := r.w.cfg.Store.ImportedMail(ctx, r.conn.ID, ids)
	if err != nil {
		return nil, err
	}
	out := ids[:0:0]
	for _, id := range ids {
		if !known[id] {
			out = append(out, id)
		} else {
			r.imported["duplicate"]++
		}
	}
	return out, nil
}

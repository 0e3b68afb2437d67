package pollers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/slack"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// SlackStore is where the Slack connection and the notification log live.
type SlackStore interface {
	SlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error)
	SlackNotified(ctx context.Context, eventID uuid.UUID, kind string) (bool, error)
	RecordSlackNotification(ctx context.Context, n helpdeskflow.SlackNotification) error
}

// SlackPoster posts a message (slack.Client).
type SlackPoster interface {
	Post(ctx context.Context, token, channel string, m slack.Message) (string, error)
}

// SlackAuthFailures marks an integration whose token Slack refused
// (outbound.Service.SlackAuthFailed).
type SlackAuthFailures interface {
	SlackAuthFailed(ctx context.Context, workspaceID uuid.UUID, reason string) error
}

// TicketGetter reads a ticket for the message (tickets.Service).
type TicketGetter interface {
	GetTicket(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (helpdeskflow.Ticket, error)
}

// SlackHandlerConfig configures a SlackHandler; all but Logger and
// Registerer are required.
type SlackHandlerConfig struct {
	Store      SlackStore
	Jobs       JobQueue
	Poster     SlackPoster
	Secrets    Opener
	Auth       SlackAuthFailures
	Tickets    TicketGetter
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// SlackHandler sends Slack notifications for new tickets, escalations
// (priority raised to urgent, or an automation's notify_slack), SLA
// warnings and breaches, and integrations that stopped working, to the
// channels the workspace chose, in two halves:
//
//   - as a dispatcher Handler it only queues a job
//     (helpdeskflow.JobSlackNotification) for an event that asks for a
//     notification the workspace has a channel for: one idempotent
//     Postgres write, so a slow Slack never holds up the dispatcher;
//   - as a JobRunner (run by the JobWorker) it posts the notification and
//     logs its final outcome (posted, skipped or failed) once per (event,
//     kind) in the notification log.
//
// When Slack refuses the token the integration is marked
// needs_revalidation and later notifications are logged as skipped, never
// dropped silently. Rate limits (after their Retry-After), 5xx, network
// errors and timeouts are retried by the worker with backoff; the last
// failed attempt is logged as failed.
type SlackHandler struct {
	cfg   SlackHandlerConfig
	posts *prometheus.CounterVec
}

// NewSlackHandler returns the handler, registering
// helpdeskflow_slack_posts_total{outcome} (posted, skipped, failed, and
// retried for each retry of a temporary failure).
func NewSlackHandler(cfg SlackHandlerConfig) (*SlackHandler, error) {
	if cfg.Store == nil || cfg.Jobs == nil || cfg.Poster == nil || cfg.Secrets == nil || cfg.Auth == nil || cfg.Tickets == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "dispatch: SlackHandlerConfig needs Store, Jobs, Poster, Secrets, Auth and Tickets")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &SlackHandler{cfg: cfg, posts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_slack_posts_total",
		Help: "Slack notifications by outcome: posted, skipped (integration needs revalidation), failed (for good), retried (temporary failure)."},
		[]string{"outcome"})}
	if cfg.Registerer != nil {
		var err error
		h.posts = kafka.Register(cfg.Registerer, h.posts, &err)
		if err != nil {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register Slack metrics", Err: err}
		}
	}
	return h, nil
}

// Name implements Handler.
func (h *SlackHandler) Name() string { return "slack" }

// notification is what an event asks Slack for.
type notification struct {
	kind        string
	channel     string // an explicit channel (notify_slack), else by kind
	ruleMessage string
	point       *helpdeskflow.SLAPoint
}

// notificationOf returns what e asks for, or false when nothing.
func notificationOf(e helpdeskflow.Event) (notification, bool) {
	switch e.Type {
	case helpdeskflow.EventTicketCreated:
		return notification{kind: slack.KindNewTicket}, true
	case helpdeskflow.EventTicketUpdated:
		var u helpdeskflow.TicketUpdated
		if json.Unmarshal(e.Data, &u) == nil && u.Priority != nil && u.Priority.New == helpdeskflow.PriorityUrgent && u.Priority.Old != helpdeskflow.PriorityUrgent {
			return notification{kind: slack.KindEscalation}, true
		}
	case helpdeskflow.EventTicketNotificationRequested:
		var n struct {
			Action string `json:"action"`
			Value  struct {
				Channel string `json:"channel"`
				Message string `json:"message"`
			} `json:"value"`
		}
		if json.Unmarshal(e.Data, &n) == nil && n.Action == "notify_slack" {
			return notification{kind: slack.KindEscalation, channel: n.Value.Channel, ruleMessage: n.Value.Message}, true
		}
	case helpdeskflow.EventTicketSLAWarning, helpdeskflow.EventTicketSLABreached:
		var p helpdeskflow.SLAPoint
		if json.Unmarshal(e.Data, &p) == nil {
			kind := slack.KindSLAWarning
			if e.Type == helpdeskflow.EventTicketSLABreached {
				kind = slack.KindSLABreach
			}
			return notification{kind: kind, point: &p}, true
		}
	}
	return notification{}, false
}

func (n notification) channelIn(c helpdeskflow.SlackChannels) string {
	if n.channel != "" {
		return n.channel
	}
	switch n.kind {
	case slack.KindNewTicket:
		return c.NewTicket
	case slack.KindEscalation:
		return c.Escalation
	case slack.KindSLAWarning:
		return c.SLAWarning
	case slack.KindSLABreach:
		return c.SLABreach
	}
	return ""
}

// integrationProblemOf returns the problem an integration event reports:
// another integration (not Slack itself) stopped working.
func integrationProblemOf(e helpdeskflow.Event) (slack.IntegrationProblem, bool) {
	status := map[string]string{helpdeskflow.EventIntegrationTokenExpired: helpdeskflow.ConnectionTokenExpired,
		helpdeskflow.EventIntegrationNeedsRevalidation: helpdeskflow.ConnectionNeedsRevalidation}[e.Type]
	if status == "" {
		return slack.IntegrationProblem{}, false
	}
	var d helpdeskflow.IntegrationChanged
	if json.Unmarshal(e.Data, &d) != nil || d.Provider == "slack" {
		return slack.IntegrationProblem{}, false
	}
	return slack.IntegrationProblem{Provider: d.Provider, Account: d.Team, Status: status, Problem: d.Error}, true
}

// slackJob is the payload of a JobSlackNotification: what to post where,
// decided when the event was handled.
type slackJob struct {
	// Key is the notification log's kind: the notification kind, with
	// ":rule" for an automation's notify_slack (so it does not collide
	// with the escalation a priority change of the same event may cause),
	// or slack.KindIntegration.
	Key         string                    `json:"key"`
	Kind        string                    `json:"kind"`
	TicketID    uuid.UUID                 `json:"ticket_id"`
	Channel     string                    `json:"channel"`
	RuleMessage string                    `json:"rule_message,omitempty"`
	Point       *helpdeskflow.SLAPoint    `json:"sla_point,omitempty"`
	Problem     *slack.IntegrationProblem `json:"problem,omitempty"`
}

// Handle implements Handler: it queues the notification e asks for when
// the workspace has Slack connected with a channel for it, and does
// nothing else.
func (h *SlackHandler) Handle(ctx context.Context, e helpdeskflow.Event) error {
	job := slackJob{TicketID: e.StreamID}
	p, isProblem := integrationProblemOf(e)
	n, isNotification := notificationOf(e)
	switch {
	case isProblem:
		job.Key, job.Kind, job.Problem = slack.KindIntegration, slack.KindIntegration, &p
	case isNotification:
		job.Key, job.Kind, job.RuleMessage, job.Point = n.kind, n.kind, n.ruleMessage, n.point
		if n.channel != "" {
			job.Key += ":rule"
		}
	default:
		return nil
	}
	in, _, err := h.cfg.Store.SlackIntegration(ctx, e.WorkspaceID)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if isProblem {
		job.Channel = in.Channels.Escalation
	} else {
		job.Channel = n.channelIn(in.Channels)
	}
	if job.Channel == "" {
		return nil
	}
	payload, err := json.Marshal(job)
	if err != nil {
		return err
	}
	return h.cfg.Jobs.EnqueueJobs(ctx, []helpdeskflow.IntegrationJob{{ID: uuid.New(), WorkspaceID: e.WorkspaceID,
		ConnectionID: e.WorkspaceID, Kind: helpdeskflow.JobSlackNotification, EventID: e.ID, Payload: payload, CreatedAt: time.Now()}})
}

// Outcomes of a Slack job besides the log's posted, skipped and failed.
const (
	// slackDuplicate: the notification log already has the event's
	// notification (a job run again after a crash).
	slackDuplicate = "duplicate"
	// slackDisconnected: Slack was disconnected before the job ran.
	slackDisconnected = "disconnected"
)

// RunJob implements JobRunner: it posts one queued notification, once,
// and logs the outcome when it is final.
func (h *SlackHandler) RunJob(ctx context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult {
	var job slackJob
	if err := json.Unmarshal(j.Payload, &job); err != nil {
		return helpdeskflow.JobResult{Err: fmt.Errorf("slack job payload: %w", err), ErrorClass: "bad_job"}
	}
	record := helpdeskflow.SlackNotification{EventID: j.EventID, WorkspaceID: j.WorkspaceID, TicketID: job.TicketID, Kind: job.Key, Channel: job.Channel}
	if done, err := h.cfg.Store.SlackNotified(ctx, j.EventID, job.Key); err != nil || done {
		if err != nil {
			return retryable(err, "internal")
		}
		return helpdeskflow.JobResult{Outcome: slackDuplicate}
	}
	in, sealed, err := h.cfg.Store.SlackIntegration(ctx, j.WorkspaceID)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
		return helpdeskflow.JobResult{Outcome: slackDisconnected}
	}
	if err != nil {
		return retryable(err, "internal")
	}
	if in.Status == helpdeskflow.IntegrationNeedsRevalidation {
		return h.decided(ctx, record, helpdeskflow.SlackSkipped, "the Slack integration needs revalidation: "+in.LastError)
	}
	var m slack.Message
	if job.Problem != nil {
		m = slack.FormatIntegrationProblem(*job.Problem)
	} else {
		t, err := h.cfg.Tickets.GetTicket(ctx, j.WorkspaceID, job.TicketID, false)
		if err != nil {
			return retryable(err, "internal")
		}
		event := slack.Event{Kind: job.Kind, TicketID: t.ID.String(), Subject: t.Subject, Priority: t.Priority, Status: t.Status, RuleMessage: job.RuleMessage}
		if t.Customer != nil {
			event.CustomerEmail = t.Customer.Email
		}
		if job.Point != nil {
			event.Target, event.DueAt = job.Point.Target, job.Point.DueAt
		}
		m = slack.Format(event)
	}
	token, err := h.cfg.Secrets.Open(sealed, helpdeskflow.SlackTokenAAD(record.WorkspaceID))
	if err != nil {
		r := h.decided(ctx, record, helpdeskflow.SlackFailed, "the stored token cannot be opened (was HDF_SECRET_KEYS changed?)")
		if !r.Retry {
			r.ErrorClass = "secret_unavailable"
		}
		return r
	}
	_, err = h.cfg.Poster.Post(ctx, string(token), record.Channel, m)
	switch outcome := slack.Classify(err); outcome {
	case slack.OutcomeOK:
		return h.decided(ctx, record, helpdeskflow.SlackPosted, "")
	case slack.OutcomeNeedsRevalidation:
		wctx, cancel := writeContext(ctx)
		defer cancel()
		if err := h.cfg.Auth.SlackAuthFailed(wctx, record.WorkspaceID, slack.Code(err)); err != nil {
			return retryable(err, "internal")
		}
		return h.decided(ctx, record, helpdeskflow.SlackSkipped, "Slack refused the token ("+slack.Code(err)+"); revalidate the integration")
	case slack.OutcomeRateLimited, slack.OutcomeTemporary:
		if ctx.Err() == context.Canceled {
			// The worker is stopping; it runs the job again later.
			return retryable(err, string(outcome))
		}
		if !j.LastAttempt() {
			h.posts.WithLabelValues("retried").Inc()
			r := retryable(err, string(outcome))
			r.RetryAfter = slack.RetryAfter(err)
			return r
		}
		fallthrough
	default:
		r := h.decided(ctx, record, helpdeskflow.SlackFailed, err.Error())
		if !r.Retry {
			r.ErrorClass = string(outcome)
		}
		return r
	}
}

// retryable is a temporary failure of class.
func retryable(err error, class string) helpdeskflow.JobResult {
	return helpdeskflow.JobResult{Err: err, ErrorClass: class, Retry: true}
}

// writeContext bounds the Postgres writes a job makes after its outside
// call, which must not fail because the call used up the job's deadline.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// decided logs the final outcome of a notification: a done job (posted or
// skipped), or for failed a job failed for good with the reason as its
// error (class "failed"; callers name a better one). A failed log write is
// a retried failure.
func (h *SlackHandler) decided(ctx context.Context, n helpdeskflow.SlackNotification, status, reason string) helpdeskflow.JobResult {
	n.Status, n.Error = status, reason
	if status != helpdeskflow.SlackPosted {
		h.cfg.Logger.Warn("slack: notification not posted", "status", status, "workspace_id", n.WorkspaceID, "ticket_id", n.TicketID,
			"event_id", n.EventID, "kind", n.Kind, "channel", n.Channel, "reason", reason)
	}
	wctx, cancel := writeContext(ctx)
	defer cancel()
	if err := h.cfg.Store.RecordSlackNotification(wctx, n); err != nil {
		return retryable(err, "internal")
	}
	h.posts.WithLabelValues(status).Inc()
	if status == helpdeskflow.SlackFailed {
		return helpdeskflow.JobResult{Err: errors.New(reason), ErrorClass: "failed"}
	}
	return helpdeskflow.JobResult{Outcome: status}
}

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
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
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

// SlackNotifierConfig configures a SlackNotifier; all but Logger and
// Registerer are required.
type SlackNotifierConfig struct {
	Store      SlackStore
	Poster     SlackPoster
	Secrets    Opener
	Auth       SlackAuthFailures
	Tickets    TicketGetter
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// SlackNotifier is the JobRunner of Slack notifications (run by the
// JobWorker, never in the dispatcher's consume loop): it posts the
// notification a SlackJob names and logs its final outcome (posted,
// skipped or failed) once per (event, kind) in the notification log.
// handlers.Slack queues the jobs.
//
// When Slack refuses the token the integration is marked
// needs_revalidation and later notifications are logged as skipped, never
// dropped silently. Rate limits (after their Retry-After), 5xx, network
// errors and timeouts are retried by the worker with backoff; the last
// failed attempt is logged as failed.
type SlackNotifier struct {
	cfg   SlackNotifierConfig
	posts *prometheus.CounterVec
}

// NewSlackNotifier returns the notifier, registering
// helpdeskflow_slack_posts_total{outcome} (posted, skipped, failed, and
// retried for each retry of a temporary failure).
func NewSlackNotifier(cfg SlackNotifierConfig) (*SlackNotifier, error) {
	if cfg.Store == nil || cfg.Poster == nil || cfg.Secrets == nil || cfg.Auth == nil || cfg.Tickets == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "dispatch: SlackNotifierConfig needs Store, Poster, Secrets, Auth and Tickets")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &SlackNotifier{cfg: cfg, posts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_slack_posts_total",
		Help: "Slack notifications by outcome: posted, skipped (integration needs revalidation), failed (for good), retried (temporary failure)."},
		[]string{"outcome"})}
	if cfg.Registerer != nil {
		var err error
		h.posts = metricreg.Register(cfg.Registerer, h.posts, &err)
		if err != nil {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register Slack metrics", Err: err}
		}
	}
	return h, nil
}

// SlackJob is the payload of a helpdeskflow.JobSlackNotification: what to
// post where, decided when the dispatcher handled the event (handlers.Slack
// queues it, SlackNotifier runs it).
type SlackJob struct {
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
func (h *SlackNotifier) RunJob(ctx context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult {
	var job SlackJob
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
func (h *SlackNotifier) decided(ctx context.Context, n helpdeskflow.SlackNotification, status, reason string) helpdeskflow.JobResult {
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

package dispatch

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/kafkaconsumer"
	"github.com/helpdeskflow/helpdeskflow/slack"
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
// (commands.Service.SlackAuthFailed).
type SlackAuthFailures interface {
	SlackAuthFailed(ctx context.Context, workspaceID uuid.UUID, reason string) error
}

// TicketGetter reads a ticket for the message (commands.Service).
type TicketGetter interface {
	GetTicket(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (helpdeskflow.Ticket, error)
}

// SlackHandlerConfig configures a SlackHandler; all but Logger and
// Registerer are required.
type SlackHandlerConfig struct {
	Store      SlackStore
	Poster     SlackPoster
	Secrets    Opener
	Auth       SlackAuthFailures
	Tickets    TicketGetter
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// SlackHandler posts Slack notifications for new tickets, escalations
// (priority raised to urgent, or an automation's notify_slack) and SLA
// warnings and breaches to the channels the workspace chose. Each
// (event, kind) is decided once and logged (posted, skipped or failed).
// When Slack refuses the token the integration is marked
// needs_revalidation and later notifications are logged as skipped, never
// dropped silently. Temporary failures (rate limits, 5xx, network) are
// retried a few times within seconds, then logged as failed, so a Slack
// outage never holds up the dispatcher's other handlers.
type SlackHandler struct {
	cfg   SlackHandlerConfig
	posts *prometheus.CounterVec
}

// NewSlackHandler returns the handler, registering
// helpdeskflow_slack_posts_total{outcome} (posted, skipped, failed, and
// retried for each retry of a temporary failure).
func NewSlackHandler(cfg SlackHandlerConfig) (*SlackHandler, error) {
	if cfg.Store == nil || cfg.Poster == nil || cfg.Secrets == nil || cfg.Auth == nil || cfg.Tickets == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "dispatch: SlackHandlerConfig needs Store, Poster, Secrets, Auth and Tickets")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &SlackHandler{cfg: cfg, posts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_slack_posts_total",
		Help: "Slack notifications by outcome: posted, skipped (integration needs revalidation), failed (not retried), retried (temporary failure)."},
		[]string{"outcome"})}
	if cfg.Registerer != nil {
		var err error
		h.posts = kafkaconsumer.Register(cfg.Registerer, h.posts, &err)
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

// Handle implements Handler.
func (h *SlackHandler) Handle(ctx context.Context, e helpdeskflow.Event) error {
	if p, ok := integrationProblemOf(e); ok {
		return h.handleIntegrationProblem(ctx, e, p)
	}
	n, ok := notificationOf(e)
	if !ok {
		return nil
	}
	in, sealed, err := h.cfg.Store.SlackIntegration(ctx, e.WorkspaceID)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
		return nil
	}
	if err != nil {
		return err
	}
	channel := n.channelIn(in.Channels)
	if channel == "" {
		return nil
	}
	// The rule's notify action names its own key, so it does not collide
	// with the escalation a priority change of the same event may cause.
	key := n.kind
	if n.channel != "" {
		key += ":rule"
	}
	if done, err := h.cfg.Store.SlackNotified(ctx, e.ID, key); err != nil || done {
		return err
	}
	record := helpdeskflow.SlackNotification{EventID: e.ID, WorkspaceID: e.WorkspaceID, TicketID: e.StreamID, Kind: key, Channel: channel}
	if in.Status == helpdeskflow.IntegrationNeedsRevalidation {
		return h.decided(ctx, record, helpdeskflow.SlackSkipped, "the Slack integration needs revalidation: "+in.LastError)
	}
	t, err := h.cfg.Tickets.GetTicket(ctx, e.WorkspaceID, e.StreamID, false)
	if err != nil {
		return err
	}
	event := slack.Event{Kind: n.kind, TicketID: t.ID.String(), Subject: t.Subject, Priority: t.Priority, Status: t.Status, RuleMessage: n.ruleMessage}
	if t.Customer != nil {
		event.CustomerEmail = t.Customer.Email
	}
	if n.point != nil {
		event.Target, event.DueAt = n.point.Target, n.point.DueAt
	}
	return h.postAndRecord(ctx, record, sealed, slack.Format(event))
}

// postAndRecord posts m with the workspace's sealed token to the record's
// channel and records the decision: posted, failed, or skipped when Slack
// refuses the token (the integration is then marked for revalidation).
func (h *SlackHandler) postAndRecord(ctx context.Context, record helpdeskflow.SlackNotification, sealed []byte, m slack.Message) error {
	token, err := h.cfg.Secrets.Open(sealed, helpdeskflow.SlackTokenAAD(record.WorkspaceID))
	if err != nil {
		return h.decided(ctx, record, helpdeskflow.SlackFailed, "the stored token cannot be opened (was HDF_SECRET_KEYS changed?)")
	}
	err = h.post(ctx, string(token), record.Channel, m)
	switch slack.Classify(err) {
	case slack.OutcomeOK:
		return h.decided(ctx, record, helpdeskflow.SlackPosted, "")
	case slack.OutcomeNeedsRevalidation:
		if err := h.cfg.Auth.SlackAuthFailed(ctx, record.WorkspaceID, slack.Code(err)); err != nil {
			return err
		}
		return h.decided(ctx, record, helpdeskflow.SlackSkipped, "Slack refused the token ("+slack.Code(err)+"); revalidate the integration")
	default:
		return h.decided(ctx, record, helpdeskflow.SlackFailed, err.Error())
	}
}

// handleIntegrationProblem posts that an integration stopped working to
// the escalation channel, once per event, like the ticket notifications
// (the record's ticket id is the workspace's, the event's stream).
func (h *SlackHandler) handleIntegrationProblem(ctx context.Context, e helpdeskflow.Event, p slack.IntegrationProblem) error {
	in, sealed, err := h.cfg.Store.SlackIntegration(ctx, e.WorkspaceID)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound || err == nil && in.Channels.Escalation == "" {
		return nil
	}
	if err != nil {
		return err
	}
	if done, err := h.cfg.Store.SlackNotified(ctx, e.ID, slack.KindIntegration); err != nil || done {
		return err
	}
	record := helpdeskflow.SlackNotification{EventID: e.ID, WorkspaceID: e.WorkspaceID, TicketID: e.StreamID, Kind: slack.KindIntegration,
		Channel: in.Channels.Escalation}
	if in.Status == helpdeskflow.IntegrationNeedsRevalidation {
		return h.decided(ctx, record, helpdeskflow.SlackSkipped, "the Slack integration needs revalidation: "+in.LastError)
	}
	return h.postAndRecord(ctx, record, sealed, slack.FormatIntegrationProblem(p))
}

// Retries of a temporary Slack failure within one event: bounded, so a
// Slack outage delays the dispatcher's other handlers (webhooks) by
// seconds, never indefinitely.
const (
	slackAttempts   = 3
	slackRetryFirst = 500 * time.Millisecond
	slackRetryMax   = 5 * time.Second
)

// post posts m, retrying rate limits and temporary failures a few times
// (honouring Retry-After up to slackRetryMax); the last error is returned.
func (h *SlackHandler) post(ctx context.Context, token, channel string, m slack.Message) error {
	wait := slackRetryFirst
	for attempt := 1; ; attempt++ {
		_, err := h.cfg.Poster.Post(ctx, token, channel, m)
		outcome := slack.Classify(err)
		if outcome != slack.OutcomeRateLimited && outcome != slack.OutcomeTemporary || attempt == slackAttempts {
			return err
		}
		h.posts.WithLabelValues("retried").Inc()
		d := max(wait, slack.RetryAfter(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(d, slackRetryMax)):
		}
		wait *= 2
	}
}

// decided logs the decision on a notification.
func (h *SlackHandler) decided(ctx context.Context, n helpdeskflow.SlackNotification, status, reason string) error {
	n.Status, n.Error = status, reason
	if status != helpdeskflow.SlackPosted {
		h.cfg.Logger.Warn("slack: notification not posted", "status", status, "workspace_id", n.WorkspaceID, "ticket_id", n.TicketID,
			"event_id", n.EventID, "kind", n.Kind, "channel", n.Channel, "reason", reason)
	}
	if err := h.cfg.Store.RecordSlackNotification(ctx, n); err != nil {
		return err
	}
	h.posts.WithLabelValues(status).Inc()
	return nil
}

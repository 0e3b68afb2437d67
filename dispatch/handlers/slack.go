package handlers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/slack"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
)

// SlackConnections reads workspaces' Slack connections (store/outbound).
type SlackConnections interface {
	SlackIntegrations(ctx context.Context, workspaceIDs []uuid.UUID) (map[uuid.UUID]helpdeskflow.SlackIntegration, error)
}

// JobQueue is where handlers queue calls to outside services
// (store/queues' integration_jobs), which pollers.JobWorker runs.
type JobQueue interface {
	EnqueueJobs(ctx context.Context, jobs []helpdeskflow.IntegrationJob) error
}

// Slack is the dispatcher handler of Slack notifications for new tickets,
// escalations (priority raised to urgent, or an automation's
// notify_slack), SLA warnings and breaches, and integrations that stopped
// working: for an event that asks for a notification the workspace has a
// channel for, it queues a job (helpdeskflow.JobSlackNotification, a
// pollers.SlackJob saying what to post where) in one idempotent Postgres
// write, so a slow Slack never holds up the dispatcher.
// pollers.SlackNotifier, run by the job worker, posts it. It is a
// dispatch.BatchHandler: a batch reads the Slack connections of all its
// workspaces in one query and queues its jobs together.
type Slack struct {
	Store SlackConnections
	Jobs  JobQueue
}

// Name implements dispatch.Handler.
func (Slack) Name() string { return "slack" }

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

// slackRequest is what an event asks Slack for: the job without its
// channel, and how to choose the channel from the workspace's.
type slackRequest struct {
	job     pollers.SlackJob
	channel func(helpdeskflow.SlackChannels) string
}

// slackRequestOf returns what e asks Slack for, or false when nothing.
func slackRequestOf(e helpdeskflow.Event) (slackRequest, bool) {
	job := pollers.SlackJob{TicketID: e.StreamID}
	if p, ok := integrationProblemOf(e); ok {
		job.Key, job.Kind, job.Problem = slack.KindIntegration, slack.KindIntegration, &p
		return slackRequest{job: job, channel: func(c helpdeskflow.SlackChannels) string { return c.Escalation }}, true
	}
	n, ok := notificationOf(e)
	if !ok {
		return slackRequest{}, false
	}
	job.Key, job.Kind, job.RuleMessage, job.Point = n.kind, n.kind, n.ruleMessage, n.point
	if n.channel != "" {
		job.Key += ":rule"
	}
	return slackRequest{job: job, channel: n.channelIn}, true
}

// Handle implements dispatch.Handler: e as a batch of its own.
func (h Slack) Handle(ctx context.Context, e helpdeskflow.Event) error { return handleAlone(ctx, h, e) }

// Begin implements dispatch.BatchHandler: it reads the Slack connections
// of the workspaces of events that ask for a notification.
func (h Slack) Begin(ctx context.Context, events []helpdeskflow.Event) (dispatch.HandlerBatch, error) {
	requests := map[uuid.UUID]slackRequest{}
	for _, e := range events {
		if r, ok := slackRequestOf(e); ok {
			requests[e.ID] = r
		}
	}
	conns, err := h.Store.SlackIntegrations(ctx, workspacesOf(events, func(e helpdeskflow.Event) bool {
		_, ok := requests[e.ID]
		return ok
	}))
	if err != nil {
		return nil, err
	}
	return &slackBatch{jobBatch: jobBatch{queue: h.Jobs}, requests: requests, conns: conns}, nil
}

// slackBatch is the Slack connections of one batch's workspaces, what its
// events ask for, and the jobs queued at Commit.
type slackBatch struct {
	jobBatch
	requests map[uuid.UUID]slackRequest // by event id
	conns    map[uuid.UUID]helpdeskflow.SlackIntegration
}

// Handle queues the notification e asks for when the workspace has Slack
// connected with a channel for it, and does nothing else.
func (b *slackBatch) Handle(ctx context.Context, e helpdeskflow.Event) error {
	r, asks := b.requests[e.ID]
	in, connected := b.conns[e.WorkspaceID]
	if !asks || !connected {
		return nil
	}
	job := r.job
	if job.Channel = r.channel(in.Channels); job.Channel == "" {
		return nil
	}
	payload, err := json.Marshal(job)
	if err != nil {
		return err
	}
	b.jobs = append(b.jobs, helpdeskflow.IntegrationJob{ID: uuid.New(), WorkspaceID: e.WorkspaceID,
		ConnectionID: e.WorkspaceID, Kind: helpdeskflow.JobSlackNotification, EventID: e.ID, Payload: payload, CreatedAt: time.Now()})
	return nil
}

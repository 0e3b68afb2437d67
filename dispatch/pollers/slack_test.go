package pollers_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/slack"
	"github.com/helpdeskflow/helpdeskflow/clients/slack/slacktest"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/dispatch/handlers"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

const slackToken = "xoxb-1-good"

type slackFixture struct {
	*webhookFixture
	fake    *slacktest.Server
	handler handlers.Slack
	seen    map[uuid.UUID]int // events handed to the handler, per ticket
}

func newSlackFixture(t *testing.T) *slackFixture {
	f := newWebhookFixture(t)
	fake := slacktest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetToken(slackToken)
	client := slack.New(fake.URL(), nil)
	f.svc = testenv.NewCommands(f.store.EventStore, testenv.CommandOptions{Sealer: f.keys, AllowLoopback: true, Slack: client})
	notifier, err := pollers.NewSlackNotifier(pollers.SlackNotifierConfig{Store: f.store, Poster: client, Secrets: f.keys, Auth: f.svc.Outbound,
		Tickets: f.svc.Tickets, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// One notification at a time, so the posts keep the events' order.
	f.jobWorker(map[string]pollers.JobRunner{helpdeskflow.JobSlackNotification: notifier}, pollers.JobWorkerConfig{PerConnection: 1, MaxAttempts: 3})
	return &slackFixture{webhookFixture: f, fake: fake, handler: handlers.Slack{Store: f.store, Jobs: f.store}, seen: map[uuid.UUID]int{}}
}

// dispatchNew hands the ticket's events not handed yet to the handler, as
// the dispatcher would, and waits until the job worker has run the jobs
// they queued.
func (f *slackFixture) dispatchNew(ticket uuid.UUID) {
	f.t.Helper()
	events, err := f.store.Load(f.ctx, f.workspace, ticket)
	if err != nil {
		f.t.Fatal(err)
	}
	f.handle(events[f.seen[ticket]:]...)
	f.seen[ticket] = len(events)
}

// handle hands events to the handler and waits until their jobs ran.
func (f *slackFixture) handle(events ...helpdeskflow.Event) {
	f.t.Helper()
	for _, e := range events {
		if err := f.handler.Handle(f.ctx, e); err != nil {
			f.t.Fatalf("%s: %v", e.Type, err)
		}
	}
	f.drain()
}

func (f *slackFixture) posts() []string {
	var out []string
	for _, p := range f.fake.Posts() {
		out = append(out, p.Channel)
	}
	return out
}

func TestSlack_NotificationsAndRevalidation(t *testing.T) {
	f := newSlackFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Outbound.ConnectSlack(ctx, f.workspace, f.md, outbound.ConnectSlack{BotToken: "xoxb-wrong",
		Channels: helpdeskflow.SlackChannels{NewTicket: "#new"}}); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation ||
		!strings.Contains(helpdeskflow.ErrorDetails(err)[0].Problem, "invalid_auth") {
		t.Fatalf("a refused token: %v", err)
	}
	if _, err := f.svc.Outbound.ConnectSlack(ctx, f.workspace, f.md, outbound.ConnectSlack{BotToken: slackToken,
		Channels: helpdeskflow.SlackChannels{NewTicket: "#new", Escalation: "#escalations", SLABreach: "#sla"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Rules.CreateAutomation(ctx, f.workspace, f.md, rules.AutomationRule{Name: "VIP",
		Conditions: automation.Conditions{All: []automation.Condition{{Field: "ticket.subject", Operator: "contains", Value: "vip"},
			{Field: "event.type", Operator: "is", Value: "ticket.created"}}},
		Actions: []automation.Action{{Type: "notify_slack", Value: map[string]any{"channel": "#vip", "message": "A VIP wrote"}}}}); err != nil {
		t.Fatal(err)
	}
	tk, err := f.svc.Tickets.CreateTicket(ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "vip <!channel> order",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	f.dispatchNew(tk.ID)
	if _, err := f.svc.Tickets.UpdateTicket(ctx, f.workspace, f.md, tk.ID, nil, tickets.UpdateTicket{Priority: strp("urgent")}, true); err != nil {
		t.Fatal(err)
	}
	f.dispatchNew(tk.ID)
	// A redelivery posts nothing again.
	f.seen[tk.ID] = 0
	f.dispatchNew(tk.ID)
	if got := strings.Join(f.posts(), " "); got != "#new #vip #escalations" {
		t.Fatalf("posts: %s", got)
	}
	if p := f.fake.Posts()[0]; strings.Contains(p.Text, "<!channel>") || !strings.Contains(p.Text, "vip") {
		t.Errorf("user text is not escaped: %q", p.Text)
	}

	// Slack revokes the token: the integration is marked, the notification
	// is logged as skipped, and the next ones are skipped without a post.
	f.fake.Revoke(slackToken)
	second, err := f.svc.Tickets.CreateTicket(ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "second",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	f.dispatchNew(second.ID)
	in, _, err := f.store.SlackIntegration(ctx, f.workspace)
	if err != nil || in.Status != helpdeskflow.IntegrationNeedsRevalidation || in.LastError != "token_revoked" {
		t.Fatalf("after token_revoked: %+v %v", in, err)
	}
	third, _ := f.svc.Tickets.CreateTicket(ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "third",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	f.dispatchNew(third.ID)
	if n := len(f.fake.Posts()); n != 3 {
		t.Errorf("posts while paused: %d", n)
	}
	skipped, err := f.store.SlackNotifications(ctx, f.workspace, helpdeskflow.SlackSkipped, 10)
	if err != nil || len(skipped) != 2 {
		t.Fatalf("skipped log: %v %+v", err, skipped)
	}
	// Revalidating a revoked token fails and keeps it paused; a new token
	// (reconnect) resumes.
	if in, err := f.svc.Outbound.RevalidateSlack(ctx, f.workspace, f.md); err != nil || in.Status == helpdeskflow.IntegrationActive {
		t.Errorf("revalidate with a revoked token: %+v %v", in, err)
	}
	f.fake.SetToken("xoxb-2-new")
	if _, err := f.svc.Outbound.ConnectSlack(ctx, f.workspace, f.md, outbound.ConnectSlack{BotToken: "xoxb-2-new",
		Channels: helpdeskflow.SlackChannels{NewTicket: "#new"}}); err != nil {
		t.Fatal(err)
	}
	if in, err := f.svc.Outbound.RevalidateSlack(ctx, f.workspace, f.md); err != nil || in.Status != helpdeskflow.IntegrationActive || f.fake.AuthTests() < 3 {
		t.Errorf("revalidate: %+v %v", in, err)
	}
	fourth, _ := f.svc.Tickets.CreateTicket(ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "fourth",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	f.dispatchNew(fourth.ID)
	if n := len(f.fake.Posts()); n != 4 {
		t.Errorf("posts after reconnecting: %d", n)
	}
}

func TestSlack_TemporaryFailuresAreRetriedByTheWorker(t *testing.T) {
	f := newSlackFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Outbound.ConnectSlack(ctx, f.workspace, f.md, outbound.ConnectSlack{BotToken: slackToken,
		Channels: helpdeskflow.SlackChannels{NewTicket: "#new"}}); err != nil {
		t.Fatal(err)
	}
	tk, err := f.svc.Tickets.CreateTicket(ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "x",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	// A 503 and a rate limit are retried; the notification is logged once,
	// as posted.
	f.fake.FailWithStatus(503)
	f.fake.RateLimitNext(0)
	f.dispatchNew(tk.ID)
	posted, _ := f.store.SlackNotifications(ctx, f.workspace, helpdeskflow.SlackPosted, 10)
	all, _ := f.store.SlackNotifications(ctx, f.workspace, "", 10)
	if len(f.fake.Posts()) != 1 || len(posted) != 1 || len(all) != 1 {
		t.Fatalf("posts %d, posted log %d, log %d", len(f.fake.Posts()), len(posted), len(all))
	}
	f.fake.SetChannelError("#new", "channel_not_found")
	second, _ := f.svc.Tickets.CreateTicket(ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "y",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	f.dispatchNew(second.ID)
	failed, _ := f.store.SlackNotifications(ctx, f.workspace, helpdeskflow.SlackFailed, 10)
	if len(f.fake.Posts()) != 1 || len(failed) != 1 || !strings.Contains(failed[0].Error, "channel_not_found") {
		t.Errorf("a channel problem is logged as failed, not retried: posts %d, failed %+v", len(f.fake.Posts()), failed)
	}
	// Slack down for longer than the attempts (3 here): logged as failed
	// once, after the last attempt.
	f.fake.SetChannelError("#new", "")
	for range 3 {
		f.fake.FailWithStatus(500)
	}
	third, _ := f.svc.Tickets.CreateTicket(ctx, f.workspace, f.md, tickets.CreateTicket{Subject: "z",
		Customer: tickets.CustomerRef{Email: "c@example.com"}, Message: tickets.NewTicketMessage{Body: "hi"}})
	f.dispatchNew(third.ID)
	if failed, _ = f.store.SlackNotifications(ctx, f.workspace, helpdeskflow.SlackFailed, 10); len(failed) != 2 || failed[0].TicketID != third.ID {
		t.Errorf("failed log after an outage: %+v", failed)
	}
	queues, err := f.store.IntegrationQueues(ctx, f.workspace, []uuid.UUID{f.workspace}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	q := queues[f.workspace]
	if q.Pending != 0 || q.FailedLast24h != 2 || q.LastFailure == nil || !q.LastFailure.Final || q.LastFailure.ErrorClass != string(slack.OutcomeTemporary) ||
		q.LastFailure.Kind != helpdeskflow.JobSlackNotification {
		t.Errorf("Slack's queue: %+v (last failure %+v)", q, q.LastFailure)
	}
}

func TestSlack_IntegrationProblemsGoToTheEscalationChannel(t *testing.T) {
	f := newSlackFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Outbound.ConnectSlack(ctx, f.workspace, f.md, outbound.ConnectSlack{BotToken: slackToken,
		Channels: helpdeskflow.SlackChannels{NewTicket: "#new", Escalation: "#escalations"}}); err != nil {
		t.Fatal(err)
	}
	event := func(eventType string, data helpdeskflow.IntegrationChanged) helpdeskflow.Event {
		b, _ := json.Marshal(data)
		return helpdeskflow.Event{ID: uuid.New(), Type: eventType, StreamID: f.workspace, StreamType: helpdeskflow.StreamWorkspace,
			WorkspaceID: f.workspace, Data: b}
	}
	expired := event(helpdeskflow.EventIntegrationTokenExpired, helpdeskflow.IntegrationChanged{Provider: "google", Team: "support@acme.test", Error: "invalid_grant"})
	for _, e := range []helpdeskflow.Event{
		expired,
		expired, // a redelivery posts once
		event(helpdeskflow.EventIntegrationNeedsRevalidation, helpdeskflow.IntegrationChanged{Provider: "outlook", Team: "<!channel>@acme.test", Error: "authentication_failed"}),
		event(helpdeskflow.EventIntegrationNeedsRevalidation, helpdeskflow.IntegrationChanged{Provider: "slack", Error: "token_revoked"}), // not to Slack itself
		event(helpdeskflow.EventIntegrationConnected, helpdeskflow.IntegrationChanged{Provider: "google"}),
	} {
		f.handle(e)
	}
	posts := f.fake.Posts()
	if got := strings.Join(f.posts(), " "); got != "#escalations #escalations" {
		t.Fatalf("posts: %s", got)
	}
	if !strings.Contains(posts[0].Text, "Gmail integration support@acme.test stopped: token_expired") {
		t.Errorf("token_expired post: %q", posts[0].Text)
	}
	if strings.Contains(posts[1].Text, "<!channel>") || !strings.Contains(posts[1].Text, "Outlook") {
		t.Errorf("needs_revalidation post is not escaped: %q", posts[1].Text)
	}
}

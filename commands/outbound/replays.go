package outbound

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// ReplayStore is what a webhook replay reads and records: the webhook
// (store/outbound), the event store's range of events (eventstore) and
// the replay (store/queues).
type ReplayStore interface {
	// Webhook returns a live webhook of the workspace; ENotFound
	// otherwise.
	Webhook(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Webhook, error)
	// LastPosition is the workspace's last event below the commit
	// horizon; CountRange counts a range's events, at most max.
	LastPosition(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.Position, error)
	CountRange(ctx context.Context, r helpdeskflow.EventRange, max int) (int, error)
	// CreateReplay records a replay for the replay worker.
	CreateReplay(ctx context.Context, r helpdeskflow.WebhookReplay) error
}

// ReplayBound is one end of a replay's range: a time (compared with the
// events' occurred_at) or a change-feed position (GET /v1/events
// cursors), with Text as the request gave it.
type ReplayBound struct {
	Text     string
	Time     *time.Time
	Position *helpdeskflow.Position
}

// ReplayWebhook is the body of POST /v1/webhooks/{id}/replay, its bounds
// parsed: From is required, To defaults to now; EventTypes (optional)
// narrows the webhook's own.
type ReplayWebhook struct {
	From, To   ReplayBound
	EventTypes []string
}

// Replays starts webhook replays. It is safe for concurrent use.
type Replays struct {
	store ReplayStore
	clock func() time.Time
}

// NewReplays returns Replays on store; now defaults to time.Now.
func NewReplays(store ReplayStore, now func() time.Time) *Replays {
	if now == nil {
		now = time.Now
	}
	return &Replays{store: store, clock: now}
}

// ReplayWebhook starts a replay of webhook id: the events of the range
// the webhook subscribes to (of EventTypes too, when given), whenever
// they happened (before the webhook existed included), committed by now:
// a time range is [From, To) of occurred_at, a position range is after
// From up to To, as the change feed pages. The replay worker records
// them as new deliveries, each ticket's in order. It returns the replay
// with its Total. ENotFound for an unknown webhook; EValidation naming
// each problem (from after to, an event type unknown or not subscribed);
// ELimitExceeded naming to when the range holds more than
// helpdeskflow.MaxReplayEvents events.
func (s *Replays) ReplayWebhook(ctx context.Context, workspaceID, id uuid.UUID, cmd ReplayWebhook) (helpdeskflow.WebhookReplay, error) {
	hook, err := s.store.Webhook(ctx, workspaceID, id)
	if err != nil {
		return helpdeskflow.WebhookReplay{}, err
	}
	var p commands.Problems
	types := replayTypes(hook, cmd.EventTypes, &p)
	r := helpdeskflow.EventRange{WorkspaceID: workspaceID, Types: types}
	last, err := s.store.LastPosition(ctx, workspaceID)
	if err != nil {
		return helpdeskflow.WebhookReplay{}, err
	}
	r.Upto = last
	switch {
	case cmd.From.Time != nil:
		r.From = cmd.From.Time
	case cmd.From.Position != nil:
		r.After = *cmd.From.Position
	}
	switch {
	case cmd.To.Time != nil:
		r.To = cmd.To.Time
	case cmd.To.Position != nil && cmd.To.Position.Less(last):
		r.Upto = *cmd.To.Position
	}
	if r.From != nil && r.To != nil && !r.From.Before(*r.To) ||
		cmd.From.Position != nil && cmd.To.Position != nil && !cmd.From.Position.Less(*cmd.To.Position) {
		p.Add("to", "must come after from")
	}
	if err := p.Err(); err != nil {
		return helpdeskflow.WebhookReplay{}, err
	}
	n, err := s.store.CountRange(ctx, r, helpdeskflow.MaxReplayEvents+1)
	if err != nil {
		return helpdeskflow.WebhookReplay{}, err
	}
	if n > helpdeskflow.MaxReplayEvents {
		return helpdeskflow.WebhookReplay{}, &helpdeskflow.Error{Code: helpdeskflow.ELimitExceeded,
			Message: fmt.Sprintf("the range holds more than %d events; replay at most %d at once", helpdeskflow.MaxReplayEvents, helpdeskflow.MaxReplayEvents),
			Details: []helpdeskflow.FieldProblem{{Field: "to", Problem: fmt.Sprintf("the range from from to to holds more than %d events (counted %d, at least); at most %d per replay: narrow from/to or event_types",
				helpdeskflow.MaxReplayEvents, n, helpdeskflow.MaxReplayEvents)}}}
	}
	to := cmd.To.Text
	if to == "" {
		to = s.now().Format("2006-01-02T15:04:05.000Z07:00")
	}
	replay := helpdeskflow.WebhookReplay{ID: uuid.New(), WebhookID: id, WorkspaceID: workspaceID, From: cmd.From.Text, To: to,
		EventTypes: types, Range: r, Total: n, Cursor: r.After, CreatedAt: s.now()}
	if err := s.store.CreateReplay(ctx, replay); err != nil {
		return helpdeskflow.WebhookReplay{}, err
	}
	return replay, nil
}

func (s *Replays) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// replayTypes returns the event types a replay of hook re-sends (nil:
// every type, for a webhook of "*" asked for no narrower list), adding a
// problem for each asked-for type that is unknown or not subscribed.
func replayTypes(hook helpdeskflow.Webhook, asked []string, p *commands.Problems) []string {
	if len(asked) == 0 {
		if slices.Contains(hook.EventTypes, "*") {
			return nil
		}
		return hook.EventTypes
	}
	var out []string
	for i, t := range asked {
		switch {
		case t == "*":
			return replayTypes(hook, nil, p)
		case !slices.Contains(WebhookEventTypes, t):
			p.Add(fmt.Sprintf("event_types[%d]", i), "unknown event type %q", t)
		case !hook.Subscribes(t):
			p.Add(fmt.Sprintf("event_types[%d]", i), "the webhook does not subscribe to %q", t)
		case !slices.Contains(out, t):
			out = append(out, t)
		}
	}
	return out
}

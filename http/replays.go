package http

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
)

// WebhookReplays starts webhook replays (outbound.Replays) and reads
// their progress (queues.Store.Replay).
type WebhookReplays interface {
	ReplayWebhook(ctx context.Context, workspaceID, id uuid.UUID, cmd outbound.ReplayWebhook) (helpdeskflow.WebhookReplay, error)
	Replay(ctx context.Context, workspaceID, webhookID, id uuid.UUID) (helpdeskflow.WebhookReplay, error)
}

// replayJSON is a replay and its progress. Status: enqueueing (its
// deliveries are being recorded), delivering (all recorded, some still
// pending or held), done.
type replayJSON struct {
	ID         uuid.UUID `json:"id"`
	WebhookID  uuid.UUID `json:"webhook_id"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	EventTypes []string  `json:"event_types"`
	Status     string    `json:"status"`
	Count      int       `json:"count"`
	Enqueued   int       `json:"enqueued"`
	Delivered  int       `json:"delivered"`
	Failed     int       `json:"failed"`
	Pending    int       `json:"pending"`
	Dropped    int       `json:"dropped"`
	Cancelled  int       `json:"cancelled"`
	CreatedAt  string    `json:"created_at"`
	EnqueuedAt *string   `json:"enqueued_at"`
}

func toReplayJSON(r helpdeskflow.WebhookReplay) replayJSON {
	status := "done"
	switch {
	case !r.Done:
		status = "enqueueing"
	case r.Pending > 0:
		status = "delivering"
	}
	types := r.EventTypes
	if types == nil {
		types = []string{"*"}
	}
	return replayJSON{ID: r.ID, WebhookID: r.WebhookID, From: r.From, To: r.To, EventTypes: types, Status: status, Count: r.Total,
		Enqueued: r.Enqueued, Delivered: r.Delivered, Failed: r.Failed, Pending: r.Pending, Dropped: r.Dropped, Cancelled: r.Cancelled,
		CreatedAt: formatTime(r.CreatedAt), EnqueuedAt: optionalTime(r.EnqueuedAt)}
}

// replayBound parses one end of a replay's range: an RFC 3339 time or a
// change-feed cursor.
func replayBound(field, text string) (outbound.ReplayBound, *helpdeskflow.FieldProblem) {
	b := outbound.ReplayBound{Text: text}
	if t, err := time.Parse(time.RFC3339Nano, text); err == nil {
		t = t.UTC()
		b.Time = &t
		return b, nil
	}
	if p, err := decodeEventCursor(text); err == nil && text != "" {
		b.Position = &p
		return b, nil
	}
	return b, &helpdeskflow.FieldProblem{Field: field, Problem: "must be an RFC 3339 time (compared with the events' occurred_at) or a next_cursor of GET /v1/events"}
}

// handleWebhookReplay is POST /v1/webhooks/{id}/replay (admin): {"from",
// "to", "event_types"}; 202 with the replay (its count of events). 422
// limit_exceeded naming to past helpdeskflow.MaxReplayEvents.
func (s *Server) handleWebhookReplay(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "webhook")
	if err != nil {
		return err
	}
	var body struct {
		From       string   `json:"from"`
		To         string   `json:"to"`
		EventTypes []string `json:"event_types"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if s.cfg.WebhookReplays == nil {
		return helpdeskflow.Errorf(helpdeskflow.EUnavailable, "webhook replays are not configured on this server")
	}
	var problems []helpdeskflow.FieldProblem
	var cmd outbound.ReplayWebhook
	if body.From == "" {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "from", Problem: "required: an RFC 3339 time or a next_cursor of GET /v1/events"})
	} else if b, problem := replayBound("from", body.From); problem != nil {
		problems = append(problems, *problem)
	} else {
		cmd.From = b
	}
	if body.To != "" {
		if b, problem := replayBound("to", body.To); problem != nil {
			problems = append(problems, *problem)
		} else {
			cmd.To = b
		}
	}
	if len(problems) > 0 {
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the replay's range is invalid", Details: problems}
	}
	cmd.EventTypes = body.EventTypes
	replay, err := s.cfg.WebhookReplays.ReplayWebhook(r.Context(), principalOf(r.Context()).WorkspaceID, id, cmd)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/webhooks/"+id.String()+"/replays/"+replay.ID.String())
	writeJSON(w, http.StatusAccepted, toReplayJSON(replay))
	return nil
}

// handleWebhookReplayGet is GET /v1/webhooks/{id}/replays/{replay_id}
// (admin): the replay and its progress.
func (s *Server) handleWebhookReplayGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "webhook")
	if err != nil {
		return err
	}
	replayID, err := pathID(p, "replay_id", "replay")
	if err != nil {
		return err
	}
	if s.cfg.WebhookReplays == nil {
		return helpdeskflow.Errorf(helpdeskflow.EUnavailable, "webhook replays are not configured on this server")
	}
	replay, err := s.cfg.WebhookReplays.Replay(r.Context(), principalOf(r.Context()).WorkspaceID, id, replayID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toReplayJSON(replay))
	return nil
}

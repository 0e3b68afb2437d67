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

// Webhooks changes a workspace's webhook subscriptions.
type Webhooks interface {
	CreateWebhook(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd outbound.CreateWebhook) (outbound.NewWebhook, error)
	RotateWebhookSecret(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, overlap time.Duration) (outbound.NewWebhook, error)
	DeleteWebhook(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error
	UpdateWebhook(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, cmd outbound.UpdateWebhook) (helpdeskflow.Webhook, error)
}

// WebhookReader reads subscriptions and their delivery log, and schedules
// a manual redelivery.
type WebhookReader interface {
	Webhook(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Webhook, error)
	Webhooks(ctx context.Context, workspaceID, after uuid.UUID, limit int) ([]helpdeskflow.Webhook, error)
	Deliveries(ctx context.Context, workspaceID, webhookID uuid.UUID, status string, before uuid.UUID, limit int) ([]helpdeskflow.Delivery, error)
	Redeliver(ctx context.Context, workspaceID, webhookID, deliveryID uuid.UUID, now time.Time) error
}

type webhookJSON struct {
	ID                  uuid.UUID `json:"id"`
	URL                 string    `json:"url"`
	EventTypes          []string  `json:"event_types"`
	Active              bool      `json:"active"`
	Secret              string    `json:"secret,omitempty"`
	PreviousSecretUntil *string   `json:"previous_secret_until"`
	DroppedDeliveries   int64     `json:"dropped_deliveries"`
	CreatedAt           string    `json:"created_at"`
	UpdatedAt           string    `json:"updated_at"`
}

func toWebhookJSON(w helpdeskflow.Webhook) webhookJSON {
	return webhookJSON{ID: w.ID, URL: w.URL, EventTypes: w.EventTypes, Active: w.Active, PreviousSecretUntil: optionalTime(w.PreviousSecretUntil),
		DroppedDeliveries: w.DroppedDeliveries, CreatedAt: formatTime(w.CreatedAt), UpdatedAt: formatTime(w.UpdatedAt)}
}

// handleWebhookCreate is POST /v1/webhooks (admin): 201 with the secret,
// shown only in this answer.
func (s *Server) handleWebhookCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd outbound.CreateWebhook
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	created, err := s.cfg.Webhooks.CreateWebhook(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), cmd)
	if err != nil {
		return err
	}
	out := toWebhookJSON(created.Webhook)
	out.Secret = created.Secret
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/v1/webhooks/"+created.ID.String())
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// handleWebhookRotate is POST /v1/webhooks/{id}/rotate-secret (admin):
// {"overlap_seconds"}; 200 with the new secret, shown only here.
func (s *Server) handleWebhookRotate(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "webhook")
	if err != nil {
		return err
	}
	var body struct {
		OverlapSeconds int64 `json:"overlap_seconds"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	rotated, err := s.cfg.Webhooks.RotateWebhookSecret(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id,
		time.Duration(body.OverlapSeconds)*time.Second)
	if err != nil {
		return err
	}
	out := toWebhookJSON(rotated.Webhook)
	out.Secret = rotated.Secret
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleWebhookList is GET /v1/webhooks (admin): oldest first; ?limit=
// (1–100, default 100) and ?cursor=.
func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	hooks, err := s.cfg.WebhookReader.Webhooks(r.Context(), principalOf(r.Context()).WorkspaceID, after, limit)
	if err != nil {
		return err
	}
	next := ""
	if len(hooks) == limit {
		next = hooks[len(hooks)-1].ID.String()
	}
	writeListOf(w, hooks, toWebhookJSON, next)
	return nil
}

// listLimit reads ?limit= (1–100, default 100) of the configuration lists.
func listLimit(r *http.Request) (int, error) {
	limit, problem := queryLimit(r.URL.Query(), 100, 100)
	if problem != nil {
		return 0, fieldError(problem.Field, problem.Problem)
	}
	return limit, nil
}

// pageParams reads ?limit= (see listLimit) and an id ?cursor=.
func pageParams(r *http.Request) (int, uuid.UUID, error) {
	limit, err := listLimit(r)
	if err != nil {
		return 0, uuid.Nil, err
	}
	var cursor uuid.UUID
	if v := r.URL.Query().Get("cursor"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return 0, uuid.Nil, fieldError("cursor", "is not a cursor this endpoint returned")
		}
		cursor = id
	}
	return limit, cursor, nil
}

// handleWebhookGet is GET /v1/webhooks/{id} (admin).
func (s *Server) handleWebhookGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "webhook")
	if err != nil {
		return err
	}
	hook, err := s.cfg.WebhookReader.Webhook(r.Context(), principalOf(r.Context()).WorkspaceID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(hook))
	return nil
}

// handleWebhookUpdate is PATCH /v1/webhooks/{id} (admin): url,
// event_types or active (false pauses it).
func (s *Server) handleWebhookUpdate(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "webhook")
	if err != nil {
		return err
	}
	var cmd outbound.UpdateWebhook
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	hook, err := s.cfg.Webhooks.UpdateWebhook(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id, cmd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(hook))
	return nil
}

// handleWebhookDelete is DELETE /v1/webhooks/{id} (admin).
func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "webhook")
	if err != nil {
		return err
	}
	if err := s.cfg.Webhooks.DeleteWebhook(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
	return nil
}

type deliveryJSON struct {
	ID            uuid.UUID     `json:"id"`
	WebhookID     uuid.UUID     `json:"webhook_id"`
	EventID       uuid.UUID     `json:"event_id"`
	EventType     string        `json:"event_type"`
	Status        string        `json:"status"`
	Attempts      int           `json:"attempts"`
	MaxAttempts   int           `json:"max_attempts"`
	NextAttemptAt *string       `json:"next_attempt_at"`
	CreatedAt     string        `json:"created_at"`
	UpdatedAt     string        `json:"updated_at"`
	ReplayID      *uuid.UUID    `json:"replay_id"`
	Log           []attemptJSON `json:"attempt_log"`
}

type attemptJSON struct {
	Attempt      int     `json:"attempt"`
	URL          string  `json:"url"`
	StatusCode   *int    `json:"status_code"`
	ResponseBody string  `json:"response_body"`
	ErrorClass   *string `json:"error_class"`
	Error        *string `json:"error"`
	StartedAt    string  `json:"started_at"`
	DurationMs   float64 `json:"duration_ms"`
}

// handleDeliveryList is GET /v1/webhooks/{id}/deliveries (admin): the
// delivery log, newest first, each with its attempts; ?status=pending,
// held (a paused webhook's pending ones), succeeded, failed, cancelled or
// dropped; ?limit= and ?cursor=. A deleted webhook's log stays readable.
func (s *Server) handleDeliveryList(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "webhook")
	if err != nil {
		return err
	}
	status := r.URL.Query().Get("status")
	switch status {
	case "", helpdeskflow.DeliveryPending, helpdeskflow.DeliveryHeld, helpdeskflow.DeliverySucceeded, helpdeskflow.DeliveryFailed,
		helpdeskflow.DeliveryCancelled, helpdeskflow.DeliveryDropped:
	default:
		return fieldError("status", "must be pending, held, succeeded, failed, cancelled or dropped")
	}
	limit, before, err := pageParams(r)
	if err != nil {
		return err
	}
	ds, err := s.cfg.WebhookReader.Deliveries(r.Context(), principalOf(r.Context()).WorkspaceID, id, status, before, limit)
	if err != nil {
		return err
	}
	data := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		data[i] = deliveryJSON{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, Status: d.Status,
			Attempts: d.Attempts, MaxAttempts: d.MaxAttempts, NextAttemptAt: optionalTime(d.NextAttemptAt),
			CreatedAt: formatTime(d.CreatedAt), UpdatedAt: formatTime(d.UpdatedAt), Log: []attemptJSON{}}
		if d.ReplayID != uuid.Nil {
			data[i].ReplayID = &ds[i].ReplayID
		}
		for _, a := range d.Log {
			aj := attemptJSON{Attempt: a.Attempt, URL: a.URL, ResponseBody: a.ResponseBody, StartedAt: formatTime(a.StartedAt),
				DurationMs: float64(a.Duration.Microseconds()) / 1000, ErrorClass: nonEmpty(a.ErrorClass), Error: nonEmpty(a.Error)}
			if a.StatusCode != 0 {
				code := a.StatusCode
				aj.StatusCode = &code
			}
			data[i].Log = append(data[i].Log, aj)
		}
	}
	next := ""
	if len(ds) == limit {
		next = ds[len(ds)-1].ID.String()
	}
	writeList(w, data, next)
	return nil
}

// handleRedeliver is POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver
// (admin): a finished delivery gets one more attempt now; 202. 404 for a
// deleted webhook (its deliveries stay cancelled).
func (s *Server) handleRedeliver(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "webhook")
	if err != nil {
		return err
	}
	deliveryID, err := pathID(p, "delivery_id", "delivery")
	if err != nil {
		return err
	}
	if _, err := s.cfg.WebhookReader.Webhook(r.Context(), principalOf(r.Context()).WorkspaceID, id); err != nil {
		return err
	}
	if err := s.cfg.WebhookReader.Redeliver(r.Context(), principalOf(r.Context()).WorkspaceID, id, deliveryID, s.cfg.Now()); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": deliveryID, "status": helpdeskflow.DeliveryPending})
	return nil
}

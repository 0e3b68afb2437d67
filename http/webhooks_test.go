package http_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// failedDelivery records a delivery of a new event to webhook id and fails
// its only attempt, as the delivery worker would.
func (h *harness) failedDelivery(workspace, webhookID uuid.UUID) uuid.UUID {
	h.t.Helper()
	ctx := context.Background()
	now := time.Now()
	d := helpdeskflow.Delivery{ID: uuid.New(), WebhookID: webhookID, WorkspaceID: workspace, EventID: uuid.New(), EventType: "ticket.created",
		StreamID: uuid.New(), StreamVersion: 1, Payload: []byte(`{}`), MaxAttempts: 1, NextAttemptAt: &now}
	if err := h.store.EnqueueDeliveries(ctx, []helpdeskflow.Delivery{d}); err != nil {
		h.t.Fatal(err)
	}
	claimed, err := h.store.ClaimDeliveries(ctx, now.Add(time.Second), 100, 100, nil, time.Minute)
	if err != nil || len(claimed) == 0 {
		h.t.Fatalf("claim: %v %d", err, len(claimed))
	}
	for _, c := range claimed {
		if err := h.store.FinishAttempts(ctx, []queues.FinishedAttempt{{DeliveryID: c.ID, WebhookID: c.WebhookID, StreamID: c.StreamID, Status: helpdeskflow.DeliveryFailed,
			Attempt: helpdeskflow.DeliveryAttempt{Attempt: 1, URL: c.URL, StatusCode: 500, ResponseBody: "boom",
				ErrorClass: "http_status", StartedAt: now, Duration: 12 * time.Millisecond}}}); err != nil {
			h.t.Fatal(err)
		}
	}
	return d.ID
}

func TestWebhooks_API(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/webhooks", h.adminKey, map[string]any{"url": "ftp://example.com/x", "event_types": []string{"ticket.exploded"}})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{`"url"`, `"event_types[0]"`} {
		if !strings.Contains(r.raw, field) {
			t.Errorf("the error does not name %s: %s", field, r.raw)
		}
	}
	r = h.do("POST", "/v1/webhooks", h.adminKey, map[string]any{"url": "https://hooks.example.com/hdf", "event_types": []string{"ticket.created", "ticket.sla_breached"}})
	h.want(r, 201, "")
	id := r.body["id"].(string)
	secret, _ := r.body["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || len(secret) < 40 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("created: %s", r.raw)
	}
	// The secret is as the Standard Webhooks spec writes one, which its
	// libraries accept: whsec_ and 32 bytes of standard base64.
	if !webhook.IsStandardSecret(secret) {
		t.Errorf("the new secret %s… is not whsec_ and standard base64", secret[:12])
	}
	// The secret is never shown again.
	for _, path := range []string{"/v1/webhooks/" + id, "/v1/webhooks"} {
		if g := h.do("GET", path, h.adminKey, nil); g.status != 200 || strings.Contains(g.raw, secret) || strings.Contains(g.raw, `"secret"`) {
			t.Errorf("GET %s: %d %s", path, g.status, g.raw)
		}
	}
	// Nor is it in the change feed.
	if strings.Contains(h.do("GET", "/v1/events?limit=1000", h.adminKey, nil).raw, secret) {
		t.Error("the secret is in the change feed")
	}
	r = h.do("POST", "/v1/webhooks/"+id+"/rotate-secret", h.adminKey, map[string]any{"overlap_seconds": 3600})
	h.want(r, 200, "")
	if r.body["secret"] == secret || r.body["previous_secret_until"] == nil {
		t.Errorf("rotated: %s", r.raw)
	}
	if rotated, _ := r.body["secret"].(string); !webhook.IsStandardSecret(rotated) {
		t.Errorf("the rotated secret %.12s… is not whsec_ and standard base64", rotated)
	}
	h.want(h.do("POST", "/v1/webhooks/"+id+"/rotate-secret", h.adminKey, map[string]any{"overlap_seconds": -1}), 400, "validation_failed")

	delivery := h.failedDelivery(h.workspace, uuid.MustParse(id))
	r = h.do("GET", "/v1/webhooks/"+id+"/deliveries?status=failed", h.adminKey, nil)
	h.want(r, 200, "")
	data := r.body["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("failed deliveries: %s", r.raw)
	}
	log := data[0].(map[string]any)["attempt_log"].([]any)[0].(map[string]any)
	if log["status_code"] != 500.0 || log["error_class"] != "http_status" || log["response_body"] != "boom" || log["url"] != "https://hooks.example.com/hdf" {
		t.Errorf("attempt log: %v", log)
	}
	if r := h.do("GET", "/v1/webhooks/"+id+"/deliveries?status=succeeded", h.adminKey, nil); len(r.body["data"].([]any)) != 0 {
		t.Errorf("succeeded: %s", r.raw)
	}
	if r := h.do("GET", "/v1/webhooks/"+id+"/deliveries?status=weird", h.adminKey, nil); r.status != 400 || !strings.Contains(r.raw, "cancelled") {
		t.Errorf("an unknown status filter: %d %s", r.status, r.raw)
	}
	h.want(h.do("POST", "/v1/webhooks/"+id+"/deliveries/"+delivery.String()+"/redeliver", h.adminKey, nil), 202, "")
	h.want(h.do("POST", "/v1/webhooks/"+id+"/deliveries/"+delivery.String()+"/redeliver", h.adminKey, nil), 409, "conflict")

	r = h.do("PATCH", "/v1/webhooks/"+id, h.adminKey, map[string]any{"active": false, "event_types": []string{"*"}})
	h.want(r, 200, "")
	if r.body["active"] != false || r.body["url"] != "https://hooks.example.com/hdf" {
		t.Errorf("patched: %s", r.raw)
	}
	h.want(h.do("PATCH", "/v1/webhooks/"+id, h.adminKey, map[string]any{"url": "http://10.0.0.1/x"}), 400, "validation_failed")
	agent := h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent"}).body["key"].(string)
	h.want(h.do("GET", "/v1/webhooks", agent, nil), 403, "forbidden")
	h.want(h.do("DELETE", "/v1/webhooks/"+id, h.adminKey, nil), 200, "")
	h.want(h.do("GET", "/v1/webhooks/"+id, h.adminKey, nil), 404, "not_found")
	// The redelivered delivery was pending: it is cancelled, and the
	// deleted webhook's log stays readable.
	r = h.do("GET", "/v1/webhooks/"+id+"/deliveries?status=cancelled", h.adminKey, nil)
	h.want(r, 200, "")
	if data := r.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != delivery.String() ||
		data[0].(map[string]any)["status"] != "cancelled" || data[0].(map[string]any)["next_attempt_at"] != nil {
		t.Errorf("cancelled deliveries: %s", r.raw)
	}
	h.want(h.do("POST", "/v1/webhooks/"+id+"/deliveries/"+delivery.String()+"/redeliver", h.adminKey, nil), 404, "not_found")
	h.want(h.do("GET", "/v1/webhooks/"+uuid.NewString()+"/deliveries", h.adminKey, nil), 404, "not_found")
}

// POST /v1/webhooks/{id}/replay: validation names the field, the range is
// counted (at most 100,000 events, else 422 naming to with the count),
// the answer is 202 with the count and a replay whose progress GET shows,
// Idempotency-Key replays the first answer, and another workspace's
// replay is 404.
func TestWebhooks_Replay(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	r := h.do("POST", "/v1/webhooks", h.adminKey, map[string]any{"url": "https://hooks.example.com/hdf", "event_types": []string{"ticket.created"}})
	h.want(r, 201, "")
	id := r.body["id"].(string)
	path := "/v1/webhooks/" + id + "/replay"

	r = h.do("POST", path, h.adminKey, map[string]any{"from": "last tuesday", "to": "1-x", "event_types": []string{"ticket.updated"}})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{`"field":"from"`, `"field":"to"`} {
		if !strings.Contains(r.raw, field) {
			t.Errorf("the error does not name %s: %s", field, r.raw)
		}
	}
	r = h.do("POST", path, h.adminKey, map[string]any{"from": "2000-01-01T00:00:00Z", "event_types": []string{"ticket.updated"}})
	h.want(r, 400, "validation_failed")
	if !strings.Contains(r.raw, `"field":"event_types[0]"`) || !strings.Contains(r.raw, "does not subscribe") {
		t.Errorf("a type the webhook does not subscribe to: %s", r.raw)
	}
	h.want(h.do("POST", path, h.adminKey, map[string]any{"from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}), 400, "validation_failed")
	h.want(h.do("POST", "/v1/webhooks/"+uuid.NewString()+"/replay", h.adminKey, map[string]any{"from": "2000-01-01T00:00:00Z"}), 404, "not_found")
	agent := h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent"}).body["key"].(string)
	h.want(h.do("POST", path, agent, map[string]any{"from": "2000-01-01T00:00:00Z"}), 403, "forbidden")

	// Two tickets: two ticket.created events in the range.
	for _, subject := range []string{"one", "two"} {
		h.want(h.do("POST", "/v1/tickets", h.adminKey, map[string]any{"subject": subject, "customer": map[string]any{"email": "c@example.com"},
			"message": map[string]any{"body": "hi"}}), 201, "")
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		r = h.do("POST", path, h.adminKey, map[string]any{"from": "2000-01-01T00:00:00Z"}, "Idempotency-Key", "replay-"+uuid.NewString())
		if r.status != 202 || r.body["count"] != 2.0 {
			return fmt.Errorf("%d %s", r.status, r.raw)
		}
		return nil
	})
	replayID := r.body["id"].(string)
	if r.body["status"] != "enqueueing" || r.header.Get("Location") != "/v1/webhooks/"+id+"/replays/"+replayID {
		t.Errorf("replay: %s (Location %s)", r.raw, r.header.Get("Location"))
	}
	key := "replay-key"
	first := h.do("POST", path, h.adminKey, map[string]any{"from": "2000-01-01T00:00:00Z"}, "Idempotency-Key", key)
	h.want(first, 202, "")
	again := h.do("POST", path, h.adminKey, map[string]any{"from": "2000-01-01T00:00:00Z"}, "Idempotency-Key", key)
	if again.status != 202 || again.body["id"] != first.body["id"] || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same Idempotency-Key: %d %s (first %s)", again.status, again.raw, first.raw)
	}
	r = h.do("GET", "/v1/webhooks/"+id+"/replays/"+replayID, h.adminKey, nil)
	h.want(r, 200, "")
	if r.body["count"] != 2.0 || r.body["id"] != replayID {
		t.Errorf("progress: %s", r.raw)
	}
	h.want(h.do("GET", "/v1/webhooks/"+id+"/replays/"+uuid.NewString(), h.adminKey, nil), 404, "not_found")
	other := h.do("POST", "/v1/webhooks", h.adminKey, map[string]any{"url": "https://hooks.example.com/2", "event_types": []string{"*"}}).body["id"].(string)
	h.want(h.do("GET", "/v1/webhooks/"+other+"/replays/"+replayID, h.adminKey, nil), 404, "not_found")

	// 100,001 events of one ticket stream, written straight to the store.
	beforeBulk := time.Now()
	stream := uuid.New()
	if _, err := h.store.DB.Pool().Exec(ctx, `INSERT INTO streams (id, workspace_id, type, version) VALUES ($1, $2, 'ticket', 100001)`, stream, h.workspace); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.DB.Pool().Exec(ctx, `INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata)
		SELECT gen_random_uuid(), $1, 'ticket', v, $2, 'ticket.created', 1, '{}', '{}' FROM generate_series(1, 100001) v`, stream, h.workspace); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		r = h.do("POST", path, h.adminKey, map[string]any{"from": "2000-01-01T00:00:00Z"})
		if r.status != 422 {
			return fmt.Errorf("%d %s", r.status, r.raw)
		}
		return nil
	})
	h.want(r, 422, "limit_exceeded")
	if !strings.Contains(r.raw, `"field":"to"`) || !strings.Contains(r.raw, "100000") {
		t.Errorf("the limit: %s", r.raw)
	}
	// Narrowed by time to before them, it is accepted.
	r = h.do("POST", path, h.adminKey, map[string]any{"from": "2000-01-01T00:00:00Z", "to": beforeBulk.UTC().Format(time.RFC3339Nano)})
	h.want(r, 202, "")
	if r.body["count"] != 2.0 {
		t.Errorf("narrowed: %s", r.raw)
	}
}

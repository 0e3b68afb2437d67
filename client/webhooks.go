package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

// CreateWebhook subscribes url to event types (POST /v1/webhooks, admin).
// The answer's Secret is shown this once: keep it to verify deliveries.
func (c *Client) CreateWebhook(ctx context.Context, w WebhookCreate) (Webhook, error) {
	var out Webhook
	_, err := c.do(ctx, rCreateWebhook.call(nil, w, &out))
	return out, err
}

// GetWebhook returns webhook id (GET /v1/webhooks/{id}).
func (c *Client) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	var out Webhook
	_, err := c.do(ctx, rGetWebhook.call(nil, nil, &out, id))
	return out, err
}

// UpdateWebhook changes webhook id (PATCH /v1/webhooks/{id}).
func (c *Client) UpdateWebhook(ctx context.Context, id string, u WebhookUpdate) (Webhook, error) {
	var out Webhook
	_, err := c.do(ctx, rUpdateWebhook.call(nil, u, &out, id))
	return out, err
}

// DeleteWebhook deletes webhook id (DELETE /v1/webhooks/{id}).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.do(ctx, rDeleteWebhook.call(nil, nil, nil, id))
	return err
}

// ListWebhooks lists the workspace's webhooks page by page.
func (c *Client) ListWebhooks(ctx context.Context) iter.Seq2[Webhook, error] {
	return pages[Webhook](ctx, c, rListWebhooks, nil)
}

// ListDeliveries lists webhook id's deliveries, newest first, page by page;
// status ("pending", "succeeded", "failed", …; "" for all) filters them.
func (c *Client) ListDeliveries(ctx context.Context, id, status string) iter.Seq2[Delivery, error] {
	q := url.Values{}
	set(q, "status", status)
	return pages[Delivery](ctx, c, rListDeliveries, q, id)
}

// WebhookEvent is the body of a webhook delivery: the event, as the
// change feed serves it, with the workspace it belongs to.
type WebhookEvent struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	WorkspaceID   string          `json:"workspace_id"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Data          json.RawMessage `json:"data"`
}

// VerifyWebhook checks a delivery's X-HDF-Signature header against its raw
// body with the webhook's secret (during a secret rotation, try each
// secret), allowing webhook.DefaultTolerance between the signed time and
// now. It returns the error of clients/webhook's Verify (errors.Is
// webhook.ErrMalformedHeader, ErrStaleTimestamp or
// ErrNoMatchingSignature) when it does not match.
func VerifyWebhook(header string, body []byte, secret string, now time.Time) error {
	return webhook.Verify(header, body, secret, webhook.DefaultTolerance, now)
}

// VerifyStandardWebhook checks a delivery's Standard Webhooks headers
// (webhook-id, webhook-timestamp, webhook-signature) against its raw body
// with the webhook's secret (whsec_ and base64), allowing
// webhook.DefaultTolerance between the signed time and now; a signature of
// either secret of a rotation matches. It returns the error of
// clients/webhook's VerifyStandard (errors.Is webhook.ErrMalformedHeader,
// ErrStaleTimestamp or ErrNoMatchingSignature) when it does not match.
func VerifyStandardWebhook(h http.Header, body []byte, secret string, now time.Time) error {
	return webhook.VerifyStandard(h.Get(webhook.HeaderWebhookID), h.Get(webhook.HeaderWebhookTimestamp), h.Get(webhook.HeaderWebhookSignature),
		body, secret, webhook.DefaultTolerance, now)
}

// ReadWebhook reads a delivery request (at most maxBody bytes of body),
// verifies its signature with secret at time.Now and returns its raw
// body: the Standard Webhooks signature (VerifyStandardWebhook) when the
// request has a webhook-signature header, as every delivery does, else
// X-HDF-Signature (VerifyWebhook). Handlers answer 2xx quickly and work
// afterwards.
func ReadWebhook(r *http.Request, secret string, maxBody int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("client: read the webhook body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("client: webhook body over %d bytes", maxBody)
	}
	verify := func() error { return VerifyWebhook(r.Header.Get(webhook.HeaderSignature), body, secret, time.Now()) }
	if r.Header.Get(webhook.HeaderWebhookSignature) != "" {
		verify = func() error { return VerifyStandardWebhook(r.Header, body, secret, time.Now()) }
	}
	if err := verify(); err != nil {
		return nil, err
	}
	return body, nil
}

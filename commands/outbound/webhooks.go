package outbound

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// Sealer encrypts secrets at rest and opens them (secretbox.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// WithSecrets makes the Service seal webhook secrets and integration
// tokens with sealer;
// allowLoopback lets webhooks point at loopback addresses (dev and tests).
func WithSecrets(sealer Sealer, allowLoopback bool) Option {
	return func(s *Service) { s.sealer, s.allowLoopback = sealer, allowLoopback }
}

// Limits of webhooks.
const (
	MaxWebhooks          = 50
	MaxWebhookEventTypes = 50
	// DefaultSecretOverlap is how long the previous secret keeps signing
	// after a rotation when the request does not say.
	DefaultSecretOverlap = 24 * time.Hour
	MaxSecretOverlap     = 7 * 24 * time.Hour
)

// WebhookEventTypes are the event types a webhook may subscribe to, besides
// "*".
var WebhookEventTypes = []string{
	helpdeskflow.EventTicketCreated, helpdeskflow.EventTicketUpdated, helpdeskflow.EventTicketMessageAdded,
	helpdeskflow.EventTicketCustomerChanged, helpdeskflow.EventTicketSLAPolicyApplied, helpdeskflow.EventTicketSLAWarning,
	helpdeskflow.EventTicketSLABreached, helpdeskflow.EventTicketNotificationRequested,
	helpdeskflow.EventCustomerCreated, helpdeskflow.EventCustomerUpdated, helpdeskflow.EventCustomerMerged,
	helpdeskflow.EventIntegrationConnected, helpdeskflow.EventIntegrationDisconnected, helpdeskflow.EventIntegrationTokenExpired,
	helpdeskflow.EventIntegrationNeedsRevalidation, helpdeskflow.EventIntegrationRevalidated,
}

// CreateWebhook is the body of POST /v1/webhooks.
type CreateWebhook struct {
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	Active     *bool    `json:"active"`
}

// NewWebhook is a created webhook with its secret, shown only once.
type NewWebhook struct {
	helpdeskflow.Webhook
	Secret string
}

// newSecret is a new webhook secret as the Standard Webhooks spec writes
// one (webhook.NewSecret: whsec_ and standard base64).
func newSecret() (string, error) {
	s, err := webhook.NewSecret()
	if err != nil {
		return "", &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "generate webhook secret", Err: err}
	}
	return s, nil
}

func (s *Service) requireSealer() error {
	if s.sealer == nil {
		return helpdeskflow.Errorf(helpdeskflow.EUnavailable, "webhooks need HDF_SECRET_KEYS (no key to seal secrets with is configured)")
	}
	return nil
}

// CreateWebhook validates and stores a subscription with a new secret,
// recording webhook.created (without the secret). It returns EValidation
// naming each problem (a URL that is not http(s), or that names a blocked
// address; an unknown event type), EConflict past MaxWebhooks.
func (s *Service) CreateWebhook(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd CreateWebhook) (NewWebhook, error) {
	if err := s.requireSealer(); err != nil {
		return NewWebhook{}, err
	}
	url, types, err := checkWebhook(cmd.URL, cmd.EventTypes, s.allowLoopback)
	if err != nil {
		return NewWebhook{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return NewWebhook{}, err
	}
	now := s.now()
	w := helpdeskflow.Webhook{ID: uuid.New(), WorkspaceID: workspaceID, URL: url, EventTypes: types,
		Active: cmd.Active == nil || *cmd.Active, CreatedAt: now, UpdatedAt: now}
	sealed, err := s.sealer.Seal([]byte(secret), helpdeskflow.WebhookSecretAAD(workspaceID, w.ID))
	if err != nil {
		return NewWebhook{}, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "seal webhook secret", Err: err}
	}
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventWebhookCreated, helpdeskflow.WebhookData{URL: w.URL, EventTypes: w.EventTypes, Active: w.Active})
	if err != nil {
		return NewWebhook{}, err
	}
	e.OccurredAt = now
	err = s.store.Transact(ctx, func(tx Tx) error {
		n, err := tx.CountWebhooks(ctx, workspaceID)
		if err != nil {
			return err
		}
		if n >= MaxWebhooks {
			return helpdeskflow.Errorf(helpdeskflow.EConflict, "the workspace already has %d of %d allowed webhooks; delete one first", n, MaxWebhooks)
		}
		tx.CreateWebhook(ctx, w, sealed)
		_, err = tx.Append(ctx, helpdeskflow.StreamRef{ID: w.ID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamWebhook}, 0, md, []helpdeskflow.NewEvent{e})
		return err
	})
	if err != nil {
		return NewWebhook{}, err
	}
	return NewWebhook{Webhook: w, Secret: secret}, nil
}

// Validate checks the URL and event types, returning all problems at once
// as EValidation. A loopback URL passes here; whether the server allows it
// is checked when the webhook is created.
func (cmd CreateWebhook) Validate() error {
	_, _, err := checkWebhook(cmd.URL, cmd.EventTypes, true)
	return err
}

// checkWebhook validates a webhook's URL and event types, listing every
// problem, and returns them normalized (event types trimmed, without
// repeats).
func checkWebhook(url string, eventTypes []string, allowLoopback bool) (string, []string, error) {
	var p commands.Problems
	url = strings.TrimSpace(url)
	if url == "" {
		p.Add("url", "required")
	} else if err := webhook.ValidateURL(url, allowLoopback); err != nil {
		p.Add("url", "%s", err.Error())
	}
	types := []string{}
	switch {
	case len(eventTypes) == 0:
		p.Add("event_types", `required: a list of event types, or ["*"] for all`)
	case len(eventTypes) > MaxWebhookEventTypes:
		p.Add("event_types", "at most %d", MaxWebhookEventTypes)
	}
	for i, t := range eventTypes {
		t = strings.TrimSpace(t)
		if t != "*" && !slices.Contains(WebhookEventTypes, t) {
			p.Add(fmt.Sprintf("event_types[%d]", i), "unknown event type %q; one of %s or *", t, strings.Join(WebhookEventTypes, ", "))
		}
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	return url, types, p.Err()
}

// UpdateWebhook is the body of PATCH /v1/webhooks/{id}: absent fields stay.
type UpdateWebhook struct {
	URL        *string  `json:"url"`
	EventTypes []string `json:"event_types"`
	Active     *bool    `json:"active"`
}

// Validate checks the fields given as CreateWebhook.Validate does,
// returning all problems at once as EValidation.
func (cmd UpdateWebhook) Validate() error {
	url, types := "https://example.com/", []string{"*"} // stand-ins for fields not given
	if cmd.URL != nil {
		url = *cmd.URL
	}
	if cmd.EventTypes != nil {
		types = cmd.EventTypes
	}
	_, _, err := checkWebhook(url, types, true)
	return err
}

// UpdateWebhook changes webhook id's URL, event types or active flag
// (pausing it: its deliveries are recorded and held, none sent, until it
// is resumed, which sends them in order), recording webhook.updated. Validation is as for CreateWebhook; ENotFound when
// unknown.
func (s *Service) UpdateWebhook(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, cmd UpdateWebhook) (helpdeskflow.Webhook, error) {
	var out helpdeskflow.Webhook
	err := s.store.Transact(ctx, func(tx Tx) error {
		w, _, err := tx.LockWebhook(ctx, workspaceID, id)
		if err != nil {
			return err
		}
		url, types := w.URL, w.EventTypes
		if cmd.URL != nil {
			url = *cmd.URL
		}
		if cmd.EventTypes != nil {
			types = cmd.EventTypes
		}
		if url, types, err = checkWebhook(url, types, s.allowLoopback); err != nil {
			return err
		}
		active := w.Active
		if cmd.Active != nil {
			active = *cmd.Active
		}
		if url == w.URL && slices.Equal(types, w.EventTypes) && active == w.Active {
			out = w
			return nil
		}
		ref := helpdeskflow.StreamRef{ID: id, WorkspaceID: workspaceID, Type: helpdeskflow.StreamWebhook}
		version, err := tx.LockStream(ctx, ref)
		if err != nil {
			return err
		}
		w.URL, w.EventTypes, w.Active, w.UpdatedAt = url, types, active, s.now()
		tx.UpdateWebhook(ctx, w)
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventWebhookUpdated, helpdeskflow.WebhookData{URL: w.URL, EventTypes: w.EventTypes, Active: w.Active})
		if err != nil {
			return err
		}
		e.OccurredAt = w.UpdatedAt
		_, err = tx.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{e})
		out = w
		return err
	})
	return out, err
}

// RotateWebhookSecret gives webhook id a new secret, shown once. For
// overlap (0: DefaultSecretOverlap; at most MaxSecretOverlap) deliveries
// carry signatures with both the new and the previous secret, so a
// receiver can switch without dropping any.
func (s *Service) RotateWebhookSecret(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, overlap time.Duration) (NewWebhook, error) {
	if err := s.requireSealer(); err != nil {
		return NewWebhook{}, err
	}
	if overlap == 0 {
		overlap = DefaultSecretOverlap
	}
	if overlap < 0 || overlap > MaxSecretOverlap {
		var p commands.Problems
		p.Add("overlap_seconds", "must be from 0 to %d", int(MaxSecretOverlap.Seconds()))
		return NewWebhook{}, p.Err()
	}
	secret, err := newSecret()
	if err != nil {
		return NewWebhook{}, err
	}
	var out NewWebhook
	err = s.store.Transact(ctx, func(tx Tx) error {
		w, _, err := tx.LockWebhook(ctx, workspaceID, id)
		if err != nil {
			return err
		}
		ref := helpdeskflow.StreamRef{ID: id, WorkspaceID: workspaceID, Type: helpdeskflow.StreamWebhook}
		version, err := tx.LockStream(ctx, ref)
		if err != nil {
			return err
		}
		sealed, err := s.sealer.Seal([]byte(secret), helpdeskflow.WebhookSecretAAD(workspaceID, id))
		if err != nil {
			return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "seal webhook secret", Err: err}
		}
		now := s.now()
		until := now.Add(overlap)
		tx.RotateWebhookSecret(ctx, id, sealed, until, now)
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventWebhookSecretRotated, helpdeskflow.WebhookSecretRotated{PreviousSecretUntil: until})
		if err != nil {
			return err
		}
		e.OccurredAt = now
		if _, err := tx.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{e}); err != nil {
			return err
		}
		w.PreviousSecretUntil, w.UpdatedAt = &until, now
		out = NewWebhook{Webhook: w, Secret: secret}
		return nil
	})
	return out, err
}

// DeleteWebhook deletes webhook id: it gets no more deliveries, its
// pending ones are cancelled (never attempted; one in flight finishes),
// and its delivery log stays. ENotFound when unknown.
func (s *Service) DeleteWebhook(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error {
	return s.store.Transact(ctx, func(tx Tx) error {
		if _, _, err := tx.LockWebhook(ctx, workspaceID, id); err != nil {
			return err
		}
		ref := helpdeskflow.StreamRef{ID: id, WorkspaceID: workspaceID, Type: helpdeskflow.StreamWebhook}
		version, err := tx.LockStream(ctx, ref)
		if err != nil {
			return err
		}
		now := s.now()
		tx.DeleteWebhook(ctx, id, now)
		e, err := helpdeskflow.NewEventOf(helpdeskflow.EventWebhookDeleted, struct{}{})
		if err != nil {
			return err
		}
		e.OccurredAt = now
		_, err = tx.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{e})
		return err
	})
}

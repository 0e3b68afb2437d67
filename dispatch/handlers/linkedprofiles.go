package handlers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
)

// ProfileConnections chooses the connections a customer is looked up in
// (linkedprofiles.Linker).
type ProfileConnections interface {
	LookupConnections(ctx context.Context, workspaceID uuid.UUID) ([]helpdeskflow.Connection, error)
}

// LinkedProfiles is the dispatcher handler that queues lookups of new
// customers in the workspace's shops and Stripe accounts: one
// helpdeskflow.JobProfileLookup job per active Shopify or Stripe
// connection of the workspace, written in one idempotent statement, so the
// dispatcher never waits for Shopify or Stripe. The job worker runs them
// with linkedprofiles.Linker.RunJob.
type LinkedProfiles struct {
	Linker ProfileConnections
	Jobs   JobQueue
	// Now defaults to time.Now.
	Now func() time.Time
}

// Name implements dispatch.Handler.
func (h *LinkedProfiles) Name() string { return "linked-profiles" }

// Handle queues the lookups of the customer of a customer.created event,
// and of a customer.updated one that changed the email.
func (h *LinkedProfiles) Handle(ctx context.Context, e helpdeskflow.Event) error {
	switch e.Type {
	case helpdeskflow.EventCustomerCreated:
	case helpdeskflow.EventCustomerUpdated:
		var d struct {
			Email *helpdeskflow.Change[string] `json:"email"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil || d.Email == nil {
			return nil
		}
	default:
		return nil
	}
	conns, err := h.Linker.LookupConnections(ctx, e.WorkspaceID)
	if err != nil || len(conns) == 0 {
		return err
	}
	payload, err := json.Marshal(linkedprofiles.LookupJob{CustomerID: e.StreamID})
	if err != nil {
		return err
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	jobs := make([]helpdeskflow.IntegrationJob, len(conns))
	for i, c := range conns {
		jobs[i] = helpdeskflow.IntegrationJob{ID: uuid.New(), WorkspaceID: e.WorkspaceID, ConnectionID: c.ID,
			Kind: helpdeskflow.JobProfileLookup, EventID: e.ID, Payload: payload, CreatedAt: now()}
	}
	return h.Jobs.EnqueueJobs(ctx, jobs)
}

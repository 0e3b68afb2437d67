package handlers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
)

// ProfileConnections chooses the connections customers are looked up in
// (linkedprofiles.Linker).
type ProfileConnections interface {
	LookupConnectionsIn(ctx context.Context, workspaceIDs []uuid.UUID) (map[uuid.UUID][]helpdeskflow.Connection, error)
}

// LinkedProfiles is the dispatcher handler that queues lookups of new
// customers in the workspace's shops and Stripe accounts: one
// helpdeskflow.JobProfileLookup job per active Shopify or Stripe
// connection of the workspace, written in one idempotent statement, so the
// dispatcher never waits for Shopify or Stripe. The job worker runs them
// with linkedprofiles.Linker.RunJob. It is a dispatch.BatchHandler: a
// batch reads the connections of all its workspaces in one query and
// queues its jobs together.
type LinkedProfiles struct {
	Linker ProfileConnections
	Jobs   JobQueue
	// Now defaults to time.Now.
	Now func() time.Time
}

// Name implements dispatch.Handler.
func (h *LinkedProfiles) Name() string { return "linked-profiles" }

// Handle implements dispatch.Handler: e as a batch of its own.
func (h *LinkedProfiles) Handle(ctx context.Context, e helpdeskflow.Event) error {
	return handleAlone(ctx, h, e)
}

// wantsLookup reports whether e asks for its customer to be looked up: a
// customer.created event, or a customer.updated one that changed the
// email.
func wantsLookup(e helpdeskflow.Event) bool {
	switch e.Type {
	case helpdeskflow.EventCustomerCreated:
		return true
	case helpdeskflow.EventCustomerUpdated:
		var d struct {
			Email *helpdeskflow.Change[string] `json:"email"`
		}
		return json.Unmarshal(e.Data, &d) == nil && d.Email != nil
	}
	return false
}

// Begin implements dispatch.BatchHandler: it reads the lookup connections
// of the workspaces of events that ask for a lookup.
func (h *LinkedProfiles) Begin(ctx context.Context, events []helpdeskflow.Event) (dispatch.HandlerBatch, error) {
	wanted := map[uuid.UUID]bool{}
	for _, e := range events {
		wanted[e.ID] = wantsLookup(e)
	}
	conns, err := h.Linker.LookupConnectionsIn(ctx, workspacesOf(events, func(e helpdeskflow.Event) bool { return wanted[e.ID] }))
	if err != nil {
		return nil, err
	}
	return &lookupBatch{jobBatch: jobBatch{queue: h.Jobs}, h: h, wanted: wanted, conns: conns}, nil
}

// lookupBatch is the lookup connections of one batch's workspaces and the
// jobs queued at Commit.
type lookupBatch struct {
	jobBatch
	h      *LinkedProfiles
	wanted map[uuid.UUID]bool // by event id
	conns  map[uuid.UUID][]helpdeskflow.Connection
}

// Handle queues the lookups of the customer of a customer.created event,
// and of a customer.updated one that changed the email.
func (b *lookupBatch) Handle(ctx context.Context, e helpdeskflow.Event) error {
	conns := b.conns[e.WorkspaceID]
	if !b.wanted[e.ID] || len(conns) == 0 {
		return nil
	}
	payload, err := json.Marshal(linkedprofiles.LookupJob{CustomerID: e.StreamID})
	if err != nil {
		return err
	}
	now := time.Now
	if b.h.Now != nil {
		now = b.h.Now
	}
	for _, c := range conns {
		b.jobs = append(b.jobs, helpdeskflow.IntegrationJob{ID: uuid.New(), WorkspaceID: e.WorkspaceID, ConnectionID: c.ID,
			Kind: helpdeskflow.JobProfileLookup, EventID: e.ID, Payload: payload, CreatedAt: now()})
	}
	return nil
}

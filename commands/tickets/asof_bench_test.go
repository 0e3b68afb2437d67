package tickets_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// BenchmarkGetTicketAsOf reads a ticket of 5,000 events (snapshot at its
// last version) now and as of past points, in the same run: the current
// read (the baseline); as of the last version and as of now, which use
// the snapshot; as of version 4,000, before the snapshot, which folds the
// 4,000 events up to it.
func BenchmarkGetTicketAsOf(b *testing.B) {
	store := testenv.Store(b)
	svc := tickets.New(postgres.Tickets(store))
	ctx, workspace := context.Background(), uuid.New()
	tk, err := svc.CreateTicket(ctx, workspace, md, validTicket())
	if err != nil {
		b.Fatal(err)
	}
	appendLongHistory(b, store, helpdeskflow.StreamRef{ID: tk.ID, WorkspaceID: workspace, Type: helpdeskflow.StreamTicket}, 5000)
	last, err := svc.UpdateTicket(ctx, workspace, md, tk.ID, nil, tickets.UpdateTicket{Subject: ptr("snapshot")}, true) // writes it
	if err != nil {
		b.Fatal(err)
	}
	asOf := func(a helpdeskflow.AsOf) func() error {
		return func() error { _, _, err := svc.GetTicketAsOf(ctx, workspace, tk.ID, a, true); return err }
	}
	for _, c := range []struct {
		name string
		read func() error
	}{
		{"current", func() error { _, err := svc.GetTicket(ctx, workspace, tk.ID, true); return err }},
		{"as_of=last version", asOf(helpdeskflow.AsOf{Version: last.Version})},
		{"as_of=now", asOf(helpdeskflow.AsOf{Time: time.Now()})},
		{"as_of=version 4000", asOf(helpdeskflow.AsOf{Version: 4000})},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				if err := c.read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

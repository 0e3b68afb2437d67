package tickets_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// BenchmarkCreateTickets measures tickets created per second by 16
// concurrent callers, two ways in the same run: one CreateTicket per
// ticket, and CreateTickets with batches of 100. A third of the tickets
// are for new customers. Compare the items/s of the two (a ratio; the
// machine is shared): the batch pays one transaction, one rule-set read
// and one commit for 100 tickets.
func BenchmarkCreateTickets(b *testing.B) {
	store := testenv.Store(b)
	svc := tickets.New(postgres.Tickets(store))
	ctx, workspace := context.Background(), uuid.New()
	var n atomic.Int64
	next := func() tickets.CreateTicket {
		i := n.Add(1)
		email := fmt.Sprintf("known-%d@example.com", i%300)
		if i%3 == 0 {
			email = fmt.Sprintf("new-%d@example.com", i)
		}
		return tickets.CreateTicket{Subject: fmt.Sprintf("Ticket %d", i), Customer: tickets.CustomerRef{Email: email},
			Message: tickets.NewTicketMessage{Body: "<p>My order arrived broken.</p>"}, Priority: "high", Tags: []string{"sync"}}
	}
	respond := func([]tickets.TicketResult) (helpdeskflow.IdempotentResponse, error) {
		return helpdeskflow.IdempotentResponse{}, nil
	}
	run := testenv.RunParallelItems
	b.Run("single", func(b *testing.B) {
		run(b, 1, func() error {
			_, err := svc.CreateTicket(ctx, workspace, md, next())
			return err
		})
	})
	b.Run("batch of 100", func(b *testing.B) {
		run(b, 100, func() error {
			items := make([]tickets.Item[tickets.CreateTicket], 100)
			for i := range items {
				items[i].Cmd = next()
			}
			_, err := svc.CreateTickets(ctx, workspace, md, items, nil, respond)
			return err
		})
	})
}

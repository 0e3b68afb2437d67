package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// A projector that stops (crashes) while a batch's ticket_messages insert
// keeps failing has not written the batch's ticket rows either: the
// projector after it loads the ticket at its old version, applies the
// redelivered message event again and inserts the message. Were the ticket
// row in at the new version, the redelivered event would be skipped as
// already applied and the message lost for good.
func TestProjector_TicketRowsGoInAfterTheirMessages(t *testing.T) {
	t.Parallel()
	conn, db := newDB(t)
	brokers := newKafka(t)
	w := newWorld()
	ticket, customer := uuid.New(), uuid.New()
	const group = "g-insert-order"
	fast := func(c *projections.Config) { c.ShutdownTimeout = 2 * time.Second }

	produce(t, brokers, w.ticketCreated(ticket, customer, helpdeskflow.TicketCreated{}))
	p := startProjector(t, conn, brokers, group, fast)
	eventually(t, wait, "the ticket projected", func() bool {
		return queryUint(t, conn, "SELECT count() FROM tickets FINAL WHERE ticket_id = ?", ticket) == 1
	})
	_ = p.stop(t)

	// ticket_messages refuses inserts: the next batch cannot be written whole.
	ctx := context.Background()
	if err := conn.Exec(ctx, "RENAME TABLE "+db+".ticket_messages TO "+db+".ticket_messages_away"); err != nil {
		t.Fatal(err)
	}
	message := uuid.New()
	produce(t, brokers, w.event(helpdeskflow.StreamTicket, ticket, 2, helpdeskflow.EventTicketMessageAdded,
		helpdeskflow.MessageAdded{ID: message, AuthorType: helpdeskflow.AuthorAgent, Body: "<p>On its way</p>", BodyText: "On its way"}))
	p = startProjector(t, conn, brokers, group, fast)
	eventually(t, wait, "a failed insert", func() bool { return p.metric(t, "helpdeskflow_projector_errors_total", "kind", "insert") >= 2 })
	_ = p.stop(t)
	if v := queryUint(t, conn, "SELECT max(version) FROM tickets WHERE ticket_id = ?", ticket); v != 1 {
		t.Errorf("tickets has version %d of the ticket while its message row is not in; want 1", v)
	}

	if err := conn.Exec(ctx, "RENAME TABLE "+db+".ticket_messages_away TO "+db+".ticket_messages"); err != nil {
		t.Fatal(err)
	}
	startProjector(t, conn, brokers, group, fast)
	eventually(t, wait, "the message and the ticket's version 2 projected after the restart", func() bool {
		return queryUint(t, conn, "SELECT count() FROM ticket_messages FINAL WHERE message_id = ?", message) == 1 &&
			queryUint(t, conn, "SELECT max(version) FROM tickets WHERE ticket_id = ?", ticket) == 2
	})
	if n := queryUint(t, conn, "SELECT toUInt64(message_count) FROM tickets FINAL WHERE ticket_id = ?", ticket); n != 2 {
		t.Errorf("message_count = %d, want 2", n)
	}
}

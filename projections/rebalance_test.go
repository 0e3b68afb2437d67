package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// When partitions move to another member and come back, the first member
// must not build on the rows it cached before: the other member advanced
// those tickets meanwhile.
func TestProjector_RebalanceReloadsState(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	brokers := newKafka(t)
	w := newWorld()
	const group = "g-rebalance"
	const n = 16 // spread over the 4 partitions, so some surely move

	tickets := make([]uuid.UUID, n)
	var first []helpdeskflow.Event
	for i := range tickets {
		tickets[i] = uuid.New()
		first = append(first, w.ticketCreated(tickets[i], uuid.New(), helpdeskflow.TicketCreated{}))
	}
	message := func(version int64) []helpdeskflow.Event {
		var events []helpdeskflow.Event
		for _, id := range tickets {
			events = append(events, w.event(helpdeskflow.StreamTicket, id, version, helpdeskflow.EventTicketMessageAdded,
				helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: helpdeskflow.AuthorAgent, Body: "x", BodyText: "x"}))
		}
		return events
	}
	allAt := func(version uint64) func() bool {
		return func() bool {
			return queryUint(t, conn, "SELECT count() FROM tickets FINAL WHERE version = ?", version) == n
		}
	}

	fastGroup := func(c *projections.Config) {
		// Notice rebalances and newly assigned partitions quickly.
		c.KafkaOptions = append(c.KafkaOptions, kgo.HeartbeatInterval(100*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond))
	}
	a := startProjector(t, conn, brokers, group, fastGroup)
	produce(t, brokers, append(first, message(2)...)...)
	eventually(t, wait, "version 2 everywhere", allAt(2))

	b := startProjector(t, conn, brokers, group, fastGroup)
	waitBalanced(t, brokers, group, 2)
	produce(t, brokers, message(3)...)
	eventually(t, wait, "version 3 everywhere, counted", func() bool {
		return allAt(3)() && a.metric(t, "helpdeskflow_projector_events_total")+b.metric(t, "helpdeskflow_projector_events_total") == 3*n
	})
	if b.metric(t, "helpdeskflow_projector_events_total") == 0 {
		t.Fatal("the second member projected nothing; the group did not rebalance in time")
	}
	if err := b.stop(t); err != nil {
		t.Fatalf("second member Run = %v", err)
	}

	produce(t, brokers, message(4)...) // all back on the first member
	eventually(t, wait, "version 4 everywhere", allAt(4))
	if got := queryUint(t, conn, "SELECT count() FROM tickets FINAL WHERE message_count = 4"); got != n {
		t.Errorf("%d of %d tickets have message_count 4 (built on a stale cached row?)", got, n)
	}
}

// waitBalanced waits until group is stable with members members that each
// own at least one partition.
func waitBalanced(t *testing.T, brokers []string, group string, members int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	eventually(t, wait, "a balanced group", func() bool {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{group}
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil || len(resp.Groups) != 1 {
			return false
		}
		g := resp.Groups[0]
		if g.State != "Stable" || len(g.Members) != members {
			return false
		}
		for _, m := range g.Members {
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(m.MemberAssignment); err != nil || len(a.Topics) == 0 || len(a.Topics[0].Partitions) == 0 {
				return false
			}
		}
		return true
	})
}

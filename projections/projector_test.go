package projections_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

const wait = 15 * time.Second

// scenario is a workspace with one customer and one ticket that has two
// messages (the first one from ticket.created, then an internal note).
type scenario struct {
	w                        *world
	customer, ticket         uuid.UUID
	workspaceCreated         helpdeskflow.Event
	customerCreated          helpdeskflow.Event
	ticketCreated, noteAdded helpdeskflow.Event
	note                     helpdeskflow.MessageAdded
}

func newScenario() *scenario {
	s := &scenario{w: newWorld(), customer: uuid.New(), ticket: uuid.New()}
	s.workspaceCreated = s.w.event(helpdeskflow.StreamWorkspace, s.w.workspace, 1, helpdeskflow.EventWorkspaceCreated,
		helpdeskflow.WorkspaceCreated{Name: "Acme"})
	s.customerCreated = s.w.event(helpdeskflow.StreamCustomer, s.customer, 1, helpdeskflow.EventCustomerCreated,
		helpdeskflow.CustomerCreated{Email: "ada@example.com", Name: "Ada Lovelace"})
	s.ticketCreated = s.w.ticketCreated(s.ticket, s.customer, helpdeskflow.TicketCreated{
		Subject: "Refund for order A-1", Status: helpdeskflow.StatusOpen, Priority: helpdeskflow.PriorityHigh,
		Type: "question", Tags: []string{"vip", "refund"}, Team: ptr("billing"), ExternalID: ptr("ext-1"),
		CustomFields: map[string]any{"order": "A-1", "amount": 12.5},
	})
	s.note = helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: helpdeskflow.AuthorAgent, Body: "<b>check stripe</b>", BodyText: "check stripe", Internal: true}
	s.noteAdded = s.w.event(helpdeskflow.StreamTicket, s.ticket, 2, helpdeskflow.EventTicketMessageAdded, s.note)
	return s
}

// newScenarioTest sets up a projector test of the scenario: a migrated
// ClickHouse database, a kfake broker and a new scenario.
func newScenarioTest(t *testing.T) (driver.Conn, []string, *scenario) {
	t.Helper()
	conn, _ := newDB(t)
	return conn, newKafka(t), newScenario()
}

func (s *scenario) events() []helpdeskflow.Event {
	return []helpdeskflow.Event{s.workspaceCreated, s.customerCreated, s.ticketCreated, s.noteAdded}
}

func TestProjector_ProjectsEvents(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	unknown := s.w.event(helpdeskflow.StreamTicket, s.ticket, 3, "ticket.teleported", map[string]string{"to": "mars"})
	produce(t, brokers, append(s.events(), unknown)...)

	p := startProjector(t, conn, brokers, "g-projects")
	// The tables of a batch are inserted concurrently: wait for all four,
	// and for the flush to have returned (the views of tickets write the
	// list tables within its insert; the metrics count after it).
	eventually(t, wait, "5 audit rows and the other tables' rows", func() bool {
		return p.metric(t, "helpdeskflow_projector_events_total") == 5 &&
			queryUint(t, conn, "SELECT count() FROM audit_log FINAL") == 5 &&
			queryUint(t, conn, "SELECT max(version) FROM tickets FINAL") == 2 &&
			queryUint(t, conn, "SELECT count() FROM customers FINAL") == 1 &&
			queryUint(t, conn, "SELECT count() FROM ticket_messages FINAL") == 2
	})

	// tickets: the state after version 2; the unknown version 3 changes nothing.
	var (
		version                               uint64
		subject, status, priority, typ, chann string
		tags                                  []string
		customerID                            uuid.UUID
		assignee, team, externalID, fields    string
		messageCount                          uint32
		createdMs, updatedMs                  int64
	)
	err := conn.QueryRow(context.Background(), `SELECT version, subject, status, priority, type, channel, tags, customer_id,
		assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms
		FROM tickets FINAL WHERE workspace_id = toUUID(?) AND ticket_id = toUUID(?)`, s.w.workspace.String(), s.ticket.String()).
		Scan(&version, &subject, &status, &priority, &typ, &chann, &tags, &customerID, &assignee, &team, &externalID, &fields,
			&messageCount, &createdMs, &updatedMs)
	if err != nil {
		t.Fatalf("select ticket: %v", err)
	}
	if got, want := version, uint64(2); got != want {
		t.Errorf("ticket version = %d, want %d", got, want)
	}
	if subject != "Refund for order A-1" || status != "open" || priority != "high" || typ != "question" || chann != "api" {
		t.Errorf("ticket = %q %q %q %q %q", subject, status, priority, typ, chann)
	}
	if got, want := tags, []string{"vip", "refund"}; !slices.Equal(got, want) {
		t.Errorf("tags = %q, want %q", got, want)
	}
	if customerID != s.customer || assignee != "" || team != "billing" || externalID != "ext-1" {
		t.Errorf("customer_id, assignee_id, team, external_id = %s %q %q %q", customerID, assignee, team, externalID)
	}
	var cf map[string]any
	if err := json.Unmarshal([]byte(fields), &cf); err != nil || cf["order"] != "A-1" || cf["amount"] != 12.5 {
		t.Errorf("custom_fields = %s (%v)", fields, err)
	}
	if got, want := messageCount, uint32(2); got != want {
		t.Errorf("message_count = %d, want %d", got, want)
	}
	if got, want := createdMs, s.ticketCreated.OccurredAt.UnixMilli(); got != want {
		t.Errorf("created_at_ms = %d, want %d", got, want)
	}
	if got, want := updatedMs, s.noteAdded.OccurredAt.UnixMilli(); got != want {
		t.Errorf("updated_at_ms = %d, want %d", got, want)
	}

	// customers
	var email, name string
	var cVersion uint64
	var cCreated int64
	err = conn.QueryRow(context.Background(), `SELECT email, name, version, created_at_ms FROM customers FINAL
		WHERE workspace_id = toUUID(?) AND customer_id = toUUID(?)`, s.w.workspace.String(), s.customer.String()).
		Scan(&email, &name, &cVersion, &cCreated)
	if err != nil {
		t.Fatalf("select customer: %v", err)
	}
	if email != "ada@example.com" || name != "Ada Lovelace" || cVersion != 1 || cCreated != s.customerCreated.OccurredAt.UnixMilli() {
		t.Errorf("customer = %q %q v%d %d", email, name, cVersion, cCreated)
	}

	// ticket_messages: the first message and the internal note.
	rows, err := conn.Query(context.Background(), `SELECT message_id, version, author_type, body, body_text, internal, created_at_ms
		FROM ticket_messages FINAL WHERE workspace_id = toUUID(?) AND ticket_id = toUUID(?) ORDER BY version`,
		s.w.workspace.String(), s.ticket.String())
	if err != nil {
		t.Fatalf("select messages: %v", err)
	}
	type msg struct {
		id                     uuid.UUID
		version                uint64
		author, body, bodyText string
		internal               uint8
		createdMs              int64
	}
	var msgs []msg
	for rows.Next() {
		var m msg
		if err := rows.Scan(&m.id, &m.version, &m.author, &m.body, &m.bodyText, &m.internal, &m.createdMs); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	rows.Close()
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2: %+v", len(msgs), msgs)
	}
	first := msgs[0]
	if first.version != 1 || first.author != "customer" || first.bodyText != "Hi" || first.internal != 0 || first.createdMs != s.ticketCreated.OccurredAt.UnixMilli() {
		t.Errorf("first message = %+v", first)
	}
	note := msgs[1]
	if want := (msg{s.note.ID, 2, "agent", "<b>check stripe</b>", "check stripe", 1, s.noteAdded.OccurredAt.UnixMilli()}); note != want {
		t.Errorf("note = %+v, want %+v", note, want)
	}

	// audit_log: one row per event with who, how and what changed.
	type auditRow struct {
		streamType, eventType, actorType, actorID, channel, requestID, correlationID string
		eventID                                                                      uuid.UUID
		schemaVersion                                                                uint16
		changed, old, new                                                            []string
		occurredAt                                                                   time.Time
		occurredMs                                                                   int64
	}
	audit := map[uint64]map[string]auditRow{} // by version, then stream type
	rows, err = conn.Query(context.Background(), `SELECT version, stream_type, event_type, actor_type, actor_id, channel, request_id,
		correlation_id, event_id, schema_version, changed_fields, old_values, new_values, occurred_at, occurred_at_ms
		FROM audit_log FINAL WHERE workspace_id = toUUID(?)`, s.w.workspace.String())
	if err != nil {
		t.Fatalf("select audit: %v", err)
	}
	for rows.Next() {
		var v uint64
		var a auditRow
		if err := rows.Scan(&v, &a.streamType, &a.eventType, &a.actorType, &a.actorID, &a.channel, &a.requestID,
			&a.correlationID, &a.eventID, &a.schemaVersion, &a.changed, &a.old, &a.new, &a.occurredAt, &a.occurredMs); err != nil {
			t.Fatal(err)
		}
		if audit[v] == nil {
			audit[v] = map[string]auditRow{}
		}
		audit[v][a.streamType] = a
	}
	rows.Close()
	created := audit[1]["ticket"]
	if created.eventType != "ticket.created" || created.eventID != s.ticketCreated.ID || created.actorType != "api_key" ||
		created.actorID != s.w.keyID.String() || created.channel != "api" || created.requestID != s.ticketCreated.Metadata.RequestID ||
		created.correlationID != "corr-1" || created.schemaVersion != 1 {
		t.Errorf("ticket.created audit = %+v", created)
	}
	if i := slices.Index(created.changed, "subject"); i < 0 || created.old[i] != "null" || created.new[i] != `"Refund for order A-1"` {
		t.Errorf("ticket.created changes = %q / %q / %q", created.changed, created.old, created.new)
	}
	if !slices.IsSorted(created.changed) || len(created.old) != len(created.changed) || len(created.new) != len(created.changed) {
		t.Errorf("ticket.created change arrays misaligned: %q %q %q", created.changed, created.old, created.new)
	}
	added := audit[2]["ticket"]
	if added.eventType != "ticket.message_added" || !slices.Equal(added.changed, []string{"messages"}) || added.old[0] != "null" ||
		!strings.Contains(added.new[0], "check stripe") {
		t.Errorf("ticket.message_added audit = %+v", added)
	}
	if got, want := added.occurredMs, s.noteAdded.OccurredAt.UnixMilli(); got != want {
		t.Errorf("occurred_at_ms = %d, want %d", got, want)
	}
	if got, want := added.occurredAt.Unix(), s.noteAdded.OccurredAt.Unix(); got != want {
		t.Errorf("occurred_at = %d, want %d", got, want)
	}
	if a := audit[3]["ticket"]; a.eventType != "ticket.teleported" || len(a.changed) != 0 {
		t.Errorf("unknown event audit = %+v", a)
	}
	if a := audit[1]["workspace"]; a.eventType != "workspace.created" || !slices.Equal(a.changed, []string{"name"}) {
		t.Errorf("workspace.created audit = %+v", a)
	}
	if a := audit[1]["customer"]; a.eventType != "customer.created" || !slices.Equal(a.changed, []string{"email", "name"}) {
		t.Errorf("customer.created audit = %+v", a)
	}
	if got := queryUint(t, conn, "SELECT count() FROM tickets FINAL") + queryUint(t, conn, "SELECT count() FROM customers FINAL"); got != 2 {
		t.Errorf("tickets+customers rows = %d, want 2 (workspace events make no entity row)", got)
	}

	// The reader sees the same ticket.
	page, err := projections.NewTicketReader(conn).ListTickets(context.Background(), s.w.workspace, projections.TicketFilter{})
	if err != nil {
		t.Fatalf("ListTickets: %v", err)
	}
	if len(page.Tickets) != 1 {
		t.Fatalf("ListTickets returned %d tickets, want 1", len(page.Tickets))
	}
	tk := page.Tickets[0]
	if tk.ID != s.ticket || tk.WorkspaceID != s.w.workspace || tk.CustomerID != s.customer || tk.Version != 2 ||
		tk.Team == nil || *tk.Team != "billing" || tk.AssigneeID != nil || tk.ExternalID == nil || *tk.ExternalID != "ext-1" ||
		tk.Customer != nil || tk.Messages != nil || tk.CustomFields["order"] != "A-1" ||
		!tk.CreatedAt.Equal(s.ticketCreated.OccurredAt.Truncate(time.Millisecond)) ||
		!tk.UpdatedAt.Equal(s.noteAdded.OccurredAt.Truncate(time.Millisecond)) {
		t.Errorf("listed ticket = %+v", tk)
	}

	if got := p.metric(t, "helpdeskflow_projector_events_total", "type", "ticket.created"); got != 1 {
		t.Errorf("events_total{ticket.created} = %v, want 1", got)
	}
	if got := p.metric(t, "helpdeskflow_projector_events_total"); got != 5 {
		t.Errorf("events_total = %v, want 5", got)
	}
	if got := p.metric(t, "helpdeskflow_projector_events_skipped_total", "reason", "unknown_type"); got != 1 {
		t.Errorf("events_skipped_total{unknown_type} = %v, want 1", got)
	}
	if got := p.metric(t, "helpdeskflow_projector_batch_size"); got < 1 {
		t.Errorf("batch_size observations = %v, want >= 1", got)
	}
	if got := p.metric(t, "helpdeskflow_projector_insert_duration_seconds", "table", "audit_log"); got < 1 {
		t.Errorf("insert_duration_seconds{audit_log} observations = %v, want >= 1", got)
	}
	eventually(t, wait, "consumer lag 0", func() bool {
		return p.metric(t, "helpdeskflow_projector_consumer_lag") == 0
	})
	if err := p.stop(t); err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}

func TestProjector_ReplayCollapses(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	p := startProjector(t, conn, brokers, "g-replay")

	produce(t, brokers, s.events()...)
	eventually(t, wait, "first delivery", func() bool { return p.metric(t, "helpdeskflow_projector_events_total") == 4 })
	produce(t, brokers, s.events()...) // the relay re-publishes everything
	eventually(t, wait, "replay", func() bool { return p.metric(t, "helpdeskflow_projector_events_total") == 8 })

	for table, want := range map[string]uint64{"audit_log": 4, "tickets": 1, "customers": 1, "ticket_messages": 2} {
		if got := queryUint(t, conn, "SELECT count() FROM "+table+" FINAL"); got != want {
			t.Errorf("%s FINAL has %d rows, want %d", table, got, want)
		}
	}
	if got := queryUint(t, conn, "SELECT count() FROM (SELECT stream_id, version FROM audit_log FINAL GROUP BY stream_id, version HAVING count() > 1)"); got != 0 {
		t.Errorf("%d (stream, version) pairs with more than one audit row", got)
	}
	if got := queryUint(t, conn, "SELECT version FROM tickets FINAL"); got != 2 {
		t.Errorf("ticket version after replay = %d, want 2", got)
	}
	if got := queryUint(t, conn, "SELECT toUInt64(message_count) FROM tickets FINAL"); got != 2 {
		t.Errorf("message_count after replay = %d, want 2", got)
	}
	// The replayed customer and ticket events were recognised as already
	// projected rather than re-applied.
	if got := p.metric(t, "helpdeskflow_projector_events_skipped_total", "reason", "stale"); got != 3 {
		t.Errorf("events_skipped_total{stale} = %v, want 3", got)
	}
}

// TestProjector_UpgradeWithEventsInFlight: a topic holds events of the
// first record format (published before an upgrade), then the upgraded
// relay publishes, in the new format, the rest and the ones it had not
// checkpointed again. The projector builds the same rows as from one
// format.
func TestProjector_UpgradeWithEventsInFlight(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	p := startProjector(t, conn, brokers, "g-upgrade")

	events := s.events()
	produceFirstFormat(t, brokers, events[:2]...)
	produce(t, brokers, events[1:]...)
	eventually(t, wait, "both formats", func() bool { return p.metric(t, "helpdeskflow_projector_events_total") == 5 })

	for table, want := range map[string]uint64{"audit_log": 4, "tickets": 1, "customers": 1, "ticket_messages": 2} {
		if got := queryUint(t, conn, "SELECT count() FROM "+table+" FINAL"); got != want {
			t.Errorf("%s FINAL has %d rows, want %d", table, got, want)
		}
	}
	if got := queryUint(t, conn, "SELECT version FROM tickets FINAL"); got != 2 {
		t.Errorf("ticket version = %d, want 2", got)
	}
	if got := queryUint(t, conn, "SELECT toUInt64(message_count) FROM tickets FINAL"); got != 2 {
		t.Errorf("message_count = %d, want 2", got)
	}
	if got := p.metric(t, "helpdeskflow_projector_errors_total", "kind", kafka.ErrKindDecode); got != 0 {
		t.Errorf("errors_total{decode} = %v, want 0", got)
	}
}

func TestProjector_LoadsStateAfterRestart(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	const group = "g-restart"

	produce(t, brokers, s.events()...)
	a := startProjector(t, conn, brokers, group)
	eventually(t, wait, "first projector", func() bool { return a.metric(t, "helpdeskflow_projector_events_total") == 4 })
	if err := a.stop(t); err != nil {
		t.Fatalf("first projector Run = %v", err)
	}

	// A new projector in the same group starts after the committed offsets
	// with an empty cache: it must read the ticket's state from ClickHouse.
	third := helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: helpdeskflow.AuthorCustomer, Body: "any news?", BodyText: "any news?"}
	v3 := s.w.event(helpdeskflow.StreamTicket, s.ticket, 3, helpdeskflow.EventTicketMessageAdded, third)
	produce(t, brokers, v3)
	b := startProjector(t, conn, brokers, group)
	eventually(t, wait, "version 3", func() bool {
		return b.metric(t, "helpdeskflow_projector_events_total") >= 1 && queryUint(t, conn, "SELECT version FROM tickets FINAL") == 3
	})
	time.Sleep(200 * time.Millisecond) // several flush intervals: room for records that should not come
	if got := b.metric(t, "helpdeskflow_projector_events_total"); got != 1 {
		t.Errorf("second projector processed %v events, want 1 (the first must have committed on shutdown)", got)
	}
	page, err := projections.NewTicketReader(conn).ListTickets(context.Background(), s.w.workspace, projections.TicketFilter{})
	if err != nil || len(page.Tickets) != 1 {
		t.Fatalf("ListTickets = %+v, %v", page, err)
	}
	tk := page.Tickets[0]
	if tk.Subject != "Refund for order A-1" || !slices.Equal(tk.Tags, []string{"vip", "refund"}) || tk.Team == nil || *tk.Team != "billing" ||
		tk.CustomFields["amount"] != 12.5 || !tk.CreatedAt.Equal(s.ticketCreated.OccurredAt.Truncate(time.Millisecond)) ||
		!tk.UpdatedAt.Equal(v3.OccurredAt.Truncate(time.Millisecond)) {
		t.Errorf("ticket after restart = %+v", tk)
	}
	if got := queryUint(t, conn, "SELECT toUInt64(message_count) FROM tickets FINAL"); got != 3 {
		t.Errorf("message_count = %d, want 3", got)
	}
	if err := b.stop(t); err != nil {
		t.Fatalf("second projector Run = %v", err)
	}

	// A redelivered older event reaching a fresh projector loads the newer
	// state and leaves it alone.
	produce(t, brokers, s.noteAdded)
	c := startProjector(t, conn, brokers, group)
	eventually(t, wait, "stale redelivery", func() bool {
		return c.metric(t, "helpdeskflow_projector_events_skipped_total", "reason", "stale") == 1
	})
	if got := queryUint(t, conn, "SELECT version FROM tickets FINAL"); got != 3 {
		t.Errorf("ticket version after stale redelivery = %d, want 3", got)
	}
	if got := queryUint(t, conn, "SELECT toUInt64(message_count) FROM tickets FINAL"); got != 3 {
		t.Errorf("message_count after stale redelivery = %d, want 3", got)
	}
}

func TestProjector_CommitsOnlyAfterInsert(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	const group = "g-commit"
	ctx := context.Background()

	a := startProjector(t, conn, brokers, group, func(c *projections.Config) { c.ShutdownTimeout = 500 * time.Millisecond })
	produce(t, brokers, s.workspaceCreated, s.customerCreated)
	eventually(t, wait, "first batch projected and committed", func() bool {
		return a.metric(t, "helpdeskflow_projector_events_total") == 2 && a.metric(t, "helpdeskflow_projector_consumer_lag") == 0
	})

	// Make every insert into audit_log fail.
	if err := conn.Exec(ctx, "RENAME TABLE audit_log TO audit_log_away"); err != nil {
		t.Fatal(err)
	}
	produce(t, brokers, s.ticketCreated, s.noteAdded)
	eventually(t, wait, "insert errors", func() bool {
		return a.metric(t, "helpdeskflow_projector_errors_total", "kind", "insert") >= 2
	})
	if got := a.metric(t, "helpdeskflow_projector_events_total"); got != 2 {
		t.Errorf("events_total while inserts fail = %v, want 2", got)
	}
	err := a.stop(t)
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EUnavailable; got != want {
		t.Errorf("Run after failing final flush = %v (code %q), want code %q", err, got, want)
	}

	if err := conn.Exec(ctx, "RENAME TABLE audit_log_away TO audit_log"); err != nil {
		t.Fatal(err)
	}
	b := startProjector(t, conn, brokers, group)
	eventually(t, wait, "second projector re-reads the uncommitted records", func() bool {
		return b.metric(t, "helpdeskflow_projector_events_total") >= 2 && queryUint(t, conn, "SELECT count() FROM audit_log FINAL") == 4
	})
	time.Sleep(200 * time.Millisecond) // several flush intervals: room for records that should not come
	if got := b.metric(t, "helpdeskflow_projector_events_total"); got != 2 {
		t.Errorf("second projector processed %v events, want 2 (only the uncommitted ones)", got)
	}
	if got := queryUint(t, conn, "SELECT toUInt64(message_count) FROM tickets FINAL"); got != 2 {
		t.Errorf("message_count = %d, want 2", got)
	}
	if got := queryUint(t, conn, "SELECT count() FROM ticket_messages FINAL"); got != 2 {
		t.Errorf("ticket_messages = %d, want 2", got)
	}
}

func TestProjector_SkipsUndecodableRecords(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	key := []byte(s.customer.String())
	produceRecords(t, brokers, &kgo.Record{Topic: kafka.TopicEvents, Key: key, Value: []byte("{not json")})
	produce(t, brokers, s.customerCreated)

	p := startProjector(t, conn, brokers, "g-poison")
	eventually(t, wait, "the valid event after the bad record", func() bool {
		return queryUint(t, conn, "SELECT count() FROM customers FINAL") == 1
	})
	if got := p.metric(t, "helpdeskflow_projector_errors_total", "kind", "decode"); got != 1 {
		t.Errorf("errors_total{decode} = %v, want 1", got)
	}
}

func TestProjector_BatchSize(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	brokers := newKafka(t)
	w := newWorld()
	var events []helpdeskflow.Event
	for i := 0; i < 12; i++ {
		events = append(events, w.ticketCreated(uuid.New(), uuid.New(), helpdeskflow.TicketCreated{}))
	}
	produce(t, brokers, events...)
	p := startProjector(t, conn, brokers, "g-batch", func(c *projections.Config) {
		c.BatchSize = 5
		c.FlushInterval = time.Hour // only the size triggers a flush, except for the rest at shutdown
	})
	eventually(t, wait, "two full batches", func() bool { return p.metric(t, "helpdeskflow_projector_batch_size") == 2 })
	if got := queryUint(t, conn, "SELECT count() FROM tickets FINAL"); got != 10 {
		t.Errorf("tickets after two batches of 5 = %d, want 10", got)
	}
	// Give the projector time to poll the last two records, which wait for
	// a batch that never fills: the shutdown flush must write them.
	time.Sleep(300 * time.Millisecond)
	if err := p.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := queryUint(t, conn, "SELECT count() FROM tickets FINAL"); got != 12 {
		t.Errorf("tickets after shutdown flush = %d, want 12", got)
	}
}

// TestProjector_MaxBatchBytes: large events make the projector flush by
// their bytes, long before the batch has BatchSize events, so its memory
// stays bounded.
func TestProjector_MaxBatchBytes(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	brokers := newKafka(t)
	w := newWorld()
	var events []helpdeskflow.Event
	for i := 0; i < 6; i++ {
		events = append(events, w.ticketCreated(uuid.New(), uuid.New(), helpdeskflow.TicketCreated{
			CustomFields: map[string]any{"notes": strings.Repeat("x", 100_000)}}))
	}
	produce(t, brokers, events...)
	startProjector(t, conn, brokers, "g-bytes", func(c *projections.Config) {
		c.BatchSize = 1000
		c.MaxBatchBytes = 150_000
		c.FlushInterval = time.Hour
	})
	// Neither the count nor the hour-long interval triggers a flush: the
	// bytes do.
	eventually(t, wait, "all six tickets, flushed by their bytes", func() bool {
		return queryUint(t, conn, "SELECT count() FROM tickets FINAL") == 6
	})
}

func TestNewProjector_InvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := projections.NewProjector(projections.Config{BatchSize: -1, Brokers: []string{""}})
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
		t.Fatalf("ErrorCode = %q, want %q (%v)", got, want, err)
	}
	for _, want := range []string{"brokers[0]", "batch size", "clickhouse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	err := projections.Config{}.Validate()
	if err == nil {
		t.Fatal("Validate of an empty Config = nil")
	}
	for _, want := range []string{"brokers", "group", "topic", "batch size", "flush interval", "cache size", "retry backoff", "shutdown timeout", "clickhouse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// The fold keeps a ticket's custom fields JSON for events that cannot
// change them; every ticket.updated that names custom_fields (in any case,
// or escaped, as encoding/json still matches it) must still change them.
func TestProjector_CustomFieldChangesAfterKeptOnes(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	updated := func(version int64, data string) helpdeskflow.Event {
		return s.w.event(helpdeskflow.StreamTicket, s.ticket, version, helpdeskflow.EventTicketUpdated, json.RawMessage(data))
	}
	produce(t, brokers, append(s.events(),
		updated(3, `{"status":{"old":"open","new":"pending"}}`),
		updated(4, `{"Custom_Fields":{"order":{"old":"A-1","new":"A-2"}}}`),
		updated(5, `{"priority":{"old":"high","new":"low"}}`),
		updated(6, `{"custom_\u0066ields":{"amount":{"old":12.5,"new":13}}}`),
		s.w.event(helpdeskflow.StreamTicket, s.ticket, 7, helpdeskflow.EventTicketMessageAdded,
			helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: helpdeskflow.AuthorAgent, Body: "ok", BodyText: "ok"}),
	)...)
	startProjector(t, conn, brokers, "g-custom-fields")
	eventually(t, wait, "the ticket at version 7", func() bool {
		return queryUint(t, conn, "SELECT max(version) FROM tickets FINAL") == 7
	})
	var fields, status, priority string
	err := conn.QueryRow(context.Background(), `SELECT custom_fields, status, priority FROM tickets FINAL
		WHERE workspace_id = toUUID(?) AND ticket_id = toUUID(?)`, s.w.workspace.String(), s.ticket.String()).Scan(&fields, &status, &priority)
	if err != nil {
		t.Fatalf("select ticket: %v", err)
	}
	var cf map[string]any
	if err := json.Unmarshal([]byte(fields), &cf); err != nil || cf["order"] != "A-2" || cf["amount"] != 13.0 || len(cf) != 2 {
		t.Errorf("custom_fields = %s (%v), want order A-2 and amount 13", fields, err)
	}
	if status != "pending" || priority != "low" {
		t.Errorf("status, priority = %q %q, want pending low", status, priority)
	}
}

package projections_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// rebuiltTables are the tables a full rebuild replaces.
var rebuiltTables = []string{"tickets", "tickets_by_created", "tickets_by_customer", "customers", "ticket_messages", "audit_log",
	"ticket_history", "ticket_service", "automation_firings"}

// history appends to s, in workspace ws, n customers with a ticket each,
// and per ticket an update and a message, in one transaction per ticket;
// it returns the ticket and customer ids.
func history(t *testing.T, s *eventstore.Store, ws uuid.UUID, n int) (tickets, customers []uuid.UUID) {
	t.Helper()
	for i := range n {
		customer, ticket := uuid.New(), uuid.New()
		err := s.Transact(context.Background(), func(tx *eventstore.Tx) error {
			ctx := context.Background()
			created := newEvent(t, helpdeskflow.EventCustomerCreated, helpdeskflow.CustomerCreated{
				Email: fmt.Sprintf("c%d-%s@example.test", i, customer.String()[:6]), Name: fmt.Sprintf("Customer %d", i),
				Tags: []string{"vip"}, CustomFields: map[string]any{"plan": "pro"},
			})
			if _, err := tx.Append(ctx, helpdeskflow.StreamRef{ID: customer, WorkspaceID: ws, Type: helpdeskflow.StreamCustomer},
				0, testenv.SystemMetadata, []helpdeskflow.NewEvent{created}); err != nil {
				return err
			}
			events := []helpdeskflow.NewEvent{
				newEvent(t, helpdeskflow.EventTicketCreated, helpdeskflow.TicketCreated{
					Subject: fmt.Sprintf("Ticket %d", i), Status: helpdeskflow.StatusNew, Priority: helpdeskflow.PriorityNormal,
					Channel: helpdeskflow.ChannelAPI, Tags: []string{"refund"}, CustomerID: customer,
					CustomFields: map[string]any{"order": float64(i)},
					Message:      helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: helpdeskflow.AuthorCustomer, Body: "<p>Hi</p>", BodyText: "Hi"},
				}),
				newEvent(t, helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{
					Status: &helpdeskflow.Change[string]{Old: helpdeskflow.StatusNew, New: "open"},
				}),
				newEvent(t, helpdeskflow.EventTicketMessageAdded, helpdeskflow.MessageAdded{
					ID: uuid.New(), AuthorType: "agent", Body: "<p>On it</p>", BodyText: "On it",
				}),
			}
			_, err := tx.Append(ctx, helpdeskflow.StreamRef{ID: ticket, WorkspaceID: ws, Type: helpdeskflow.StreamTicket},
				0, testenv.SystemMetadata, events)
			return err
		})
		if err != nil {
			t.Fatalf("append history: %v", err)
		}
		tickets, customers = append(tickets, ticket), append(customers, customer)
	}
	return tickets, customers
}

// touch appends to each ticket (at version from) an update of its subject,
// as an automation rule (so automation_firings has rows).
func touch(t *testing.T, s *eventstore.Store, ws uuid.UUID, tickets []uuid.UUID, from int64, subject string) {
	t.Helper()
	md := testenv.SystemMetadata
	md.Actor, md.Channel, md.RuleID = helpdeskflow.Actor{Type: helpdeskflow.ActorRule, ID: "rule-touch"}, helpdeskflow.ChannelAutomation, "rule-touch"
	for _, id := range tickets {
		err := s.Transact(context.Background(), func(tx *eventstore.Tx) error {
			e := newEvent(t, helpdeskflow.EventTicketUpdated, helpdeskflow.TicketUpdated{
				Subject: &helpdeskflow.Change[string]{Old: "", New: subject},
			})
			_, err := tx.Append(context.Background(), helpdeskflow.StreamRef{ID: id, WorkspaceID: ws, Type: helpdeskflow.StreamTicket},
				from, md, []helpdeskflow.NewEvent{e})
			return err
		})
		if err != nil {
			t.Fatalf("append update: %v", err)
		}
	}
}

func newEvent(t *testing.T, typ string, data any) helpdeskflow.NewEvent {
	t.Helper()
	e, err := helpdeskflow.NewEventOf(typ, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// liveProjection runs a projector on conn's database and publishes to it,
// as the relay would, every event of s not published yet (publish).
type liveProjection struct {
	t         *testing.T
	s         *eventstore.Store
	conn      driver.Conn
	brokers   []string
	published helpdeskflow.Position
	count     int
	messages  int
	versions  map[uuid.UUID]int64  // the latest of each stream published
	types     map[uuid.UUID]string // the type of each stream
}

func startLiveProjection(t *testing.T, s *eventstore.Store, conn driver.Conn) *liveProjection {
	brokers := newKafka(t)
	startProjector(t, conn, brokers, "g-"+uuid.NewString()[:8], func(c *projections.Config) { c.Events = s })
	return &liveProjection{t: t, s: s, conn: conn, brokers: brokers, types: map[uuid.UUID]string{}}
}

// publish publishes the events appended since the last call and waits
// until the projector has written all their rows into whatever tables are
// called so by then.
func (l *liveProjection) publish() {
	l.t.Helper()
	if l.versions == nil {
		l.versions = map[uuid.UUID]int64{}
	}
	// The commit horizon is cluster-wide: another test's open transaction
	// can hold back events that have committed.
	stored, err := l.s.CountAfter(context.Background(), helpdeskflow.Position{})
	if err != nil {
		l.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for int64(l.count) < stored {
		events, err := l.s.ReadAfter(context.Background(), l.published, 1000, uuid.Nil)
		if err != nil {
			l.t.Fatal(err)
		}
		if len(events) == 0 {
			if time.Now().After(deadline) {
				l.t.Fatalf("%d events stored, %d readable", stored, l.count)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		produce(l.t, l.brokers, events...)
		l.published = events[len(events)-1].Position
		l.count += len(events)
		for _, e := range events {
			l.versions[e.StreamID] = e.Version
			if e.Type == helpdeskflow.EventTicketCreated || e.Type == helpdeskflow.EventTicketMessageAdded {
				l.messages++
			}
			l.types[e.StreamID] = e.StreamType
		}
	}
	var ticketSum, customerSum uint64
	for id, v := range l.versions {
		switch l.types[id] {
		case helpdeskflow.StreamTicket:
			ticketSum += uint64(v)
		case helpdeskflow.StreamCustomer:
			customerSum += uint64(v)
		}
	}
	eventually(l.t, 30*time.Second, "the live projector to catch up", func() bool {
		return queryUint(l.t, l.conn, "SELECT count() FROM audit_log FINAL") == uint64(l.count) &&
			queryUint(l.t, l.conn, "SELECT count() FROM ticket_messages FINAL") == uint64(l.messages) &&
			queryUint(l.t, l.conn, "SELECT toUInt64(sum(version)) FROM customers FINAL") == customerSum &&
			queryUint(l.t, l.conn, "SELECT toUInt64(sum(version)) FROM tickets FINAL") == ticketSum &&
			queryUint(l.t, l.conn, "SELECT toUInt64(sum(version)) FROM tickets_by_created FINAL") == ticketSum &&
			queryUint(l.t, l.conn, "SELECT toUInt64(sum(version)) FROM tickets_by_customer FINAL") == ticketSum
	})
}

// contents returns the rows of table under FINAL, each formatted as text,
// sorted.
func contents(t *testing.T, conn driver.Conn, table string) []string {
	t.Helper()
	query := "SELECT * FROM " + table + " FINAL"
	if table == "ticket_service" { // aggregate states: their merged values
		query = projections.ServiceFactsQuery()
	}
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		parts := make([]string, len(dest))
		for i, d := range dest {
			parts[i] = fmt.Sprint(reflect.ValueOf(d).Elem().Interface())
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	sort.Strings(out)
	return out
}

func snapshot(t *testing.T, conn driver.Conn, tables []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range tables {
		out[table] = contents(t, conn, table)
	}
	return out
}

// sameContents fails the test where got and want differ.
func sameContents(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for table, w := range want {
		g := got[table]
		if len(w) == 0 {
			t.Errorf("%s: %s: the reference is empty", what, table)
		}
		if !slices.Equal(g, w) {
			t.Errorf("%s: %s differs: %d rows, want %d", what, table, len(g), len(w))
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Errorf("first difference:\n got  %s\n want %s", g[i], w[i])
					break
				}
			}
		}
	}
}

func tableNames(t *testing.T, conn driver.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func rebuild(t *testing.T, cfg projections.RebuildConfig) projections.RebuildReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	report, err := projections.Rebuild(ctx, cfg)
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	return report
}

// TestRebuildEqualsLiveProjection: a rebuild from the event store swaps in
// tables with the same FINAL contents as the live projection built from
// Kafka, keeps the old ones until --drop-old, and the list tables are fed
// by the views after the swap.
func TestRebuildEqualsLiveProjection(t *testing.T) {
	conn, _ := newDB(t)
	s := testenv.Store(t)
	ws := uuid.New()
	tickets, _ := history(t, s, ws, 40)
	touch(t, s, ws, tickets[:10], 3, "Changed")
	live := startLiveProjection(t, s, conn)
	live.publish()
	want := snapshot(t, conn, rebuiltTables)

	report := rebuild(t, projections.RebuildConfig{ClickHouse: conn, Events: s, BatchSize: 37})
	if report.Events < int64(live.count) {
		t.Errorf("rebuild folded %d events, want at least %d", report.Events, live.count)
	}
	sameContents(t, "after the rebuild", snapshot(t, conn, rebuiltTables), want)
	names := tableNames(t, conn)
	for _, table := range rebuiltTables {
		if !slices.Contains(names, table+"__old") {
			t.Errorf("%s__old is not kept; tables: %v", table, names)
		}
		if slices.Contains(names, table+"__v2") {
			t.Errorf("%s__v2 is left; tables: %v", table, names)
		}
	}
	if got := queryUint(t, conn, "SELECT toUInt64(max(version)) FROM projection_versions WHERE table_name = 'tickets'"); got != 1 {
		t.Errorf("projection_versions records tickets at version %d, want 1", got)
	}

	// The views feed the swapped-in list tables.
	more, _ := history(t, s, ws, 3)
	live.publish()
	for _, table := range []string{"tickets_by_created", "tickets_by_customer"} {
		n := queryUint(t, conn, "SELECT count() FROM "+table+" FINAL WHERE ticket_id = toUUID('"+more[2].String()+"')")
		if n != 1 {
			t.Errorf("a ticket created after the swap has %d rows in %s, want 1", n, table)
		}
	}

	// Another rebuild refuses while the old tables are kept; --drop-old
	// drops them.
	if _, err := projections.Rebuild(context.Background(), projections.RebuildConfig{ClickHouse: conn, Events: s}); helpdeskflow.ErrorCode(err) != helpdeskflow.EConflict {
		t.Errorf("a rebuild with old tables kept returned %v, want EConflict", err)
	}
	dropped, err := projections.DropOldTables(context.Background(), conn, nil)
	if err != nil || len(dropped) != len(rebuiltTables) {
		t.Errorf("DropOldTables = %v, %v; want the %d old tables", dropped, err, len(rebuiltTables))
	}
}

// TestRebuildKeepsConcurrentEvents: events appended while a rebuild runs,
// and events a live projector writes into the old tables right before the
// swap, are in the swapped-in tables; reads of the live tables never fail
// nor come back empty meanwhile.
func TestRebuildKeepsConcurrentEvents(t *testing.T) {
	conn, _ := newDB(t)
	s := testenv.Store(t)
	ws := uuid.New()
	tickets, _ := history(t, s, ws, 60)
	live := startLiveProjection(t, s, conn)
	live.publish()

	// Reads of the live tables, throughout.
	stopReads := make(chan struct{})
	var reads sync.WaitGroup
	var readErr atomic.Value
	var readCount atomic.Int64
	reads.Add(1)
	go func() {
		defer reads.Done()
		for {
			select {
			case <-stopReads:
				return
			default:
			}
			for _, table := range []string{"tickets", "tickets_by_created", "tickets_by_customer", "customers"} {
				var n uint64
				err := conn.QueryRow(context.Background(), "SELECT count() FROM "+table+" FINAL").Scan(&n)
				if err == nil && n < 60 {
					err = fmt.Errorf("%s has %d rows, want at least 60", table, n)
				}
				if err != nil {
					readErr.Store(err)
					return
				}
				readCount.Add(1)
			}
		}
	}()

	var during sync.Once
	cfg := projections.RebuildConfig{ClickHouse: conn, Events: s, BatchSize: 50,
		Progress: func(projections.RebuildProgress) {
			during.Do(func() {
				touch(t, s, ws, tickets[:20], 3, "During the build")
				history(t, s, ws, 5)
				live.publish()
			})
		}}
	projections.BeforeSwap(&cfg, func() {
		// Caught up: what is appended now only the live projector sees
		// before the swap, and it writes it into the tables swapped out.
		touch(t, s, ws, tickets[20:30], 3, "Right before the swap")
		history(t, s, ws, 2)
		live.publish()
	})
	rebuild(t, cfg)
	close(stopReads)
	reads.Wait()
	if err := readErr.Load(); err != nil {
		t.Errorf("a read during the rebuild: %v", err)
	}
	if readCount.Load() == 0 {
		t.Error("no read ran during the rebuild")
	}

	// The reference: every event projected from Kafka into a database of
	// its own.
	ref, _ := newDB(t)
	refLive := startLiveProjection(t, s, ref)
	refLive.publish()
	live.publish()
	sameContents(t, "after a rebuild with concurrent appends", snapshot(t, conn, rebuiltTables), snapshot(t, ref, rebuiltTables))
}

// TestRebuildResumes: a rebuild interrupted midway continues from its
// checkpoint rather than starting over, and ends with the same tables.
func TestRebuildResumes(t *testing.T) {
	conn, _ := newDB(t)
	s := testenv.Store(t)
	ws := uuid.New()
	tickets, _ := history(t, s, ws, 50)
	touch(t, s, ws, tickets, 3, "Second")
	live := startLiveProjection(t, s, conn)
	live.publish()
	want := snapshot(t, conn, rebuiltTables)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := 0
	_, err := projections.Rebuild(ctx, projections.RebuildConfig{ClickHouse: conn, Events: s, BatchSize: 20,
		Progress: func(projections.RebuildProgress) {
			if batches++; batches == 4 {
				cancel() // as a kill would, between two batches
			}
		}})
	if err == nil {
		t.Fatal("the interrupted rebuild returned no error")
	}
	checkpointed := queryUint(t, conn, "SELECT events FROM projection_rebuilds ORDER BY written_ns DESC LIMIT 1")
	if checkpointed == 0 || checkpointed >= uint64(live.count) {
		t.Fatalf("checkpoint after the interruption holds %d events, want some of %d", checkpointed, live.count)
	}
	if names := tableNames(t, conn); slices.Contains(names, "tickets__old") {
		t.Fatalf("the interrupted rebuild swapped: %v", names)
	}

	report := rebuild(t, projections.RebuildConfig{ClickHouse: conn, Events: s, BatchSize: 20})
	if !report.Resumed || report.ResumedFrom == (helpdeskflow.Position{}) {
		t.Errorf("the second run did not resume: %+v", report)
	}
	if report.Events != int64(live.count)-int64(checkpointed) {
		t.Errorf("the second run folded %d events, want the %d after the checkpoint", report.Events, int64(live.count)-int64(checkpointed))
	}
	sameContents(t, "after the resumed rebuild", snapshot(t, conn, rebuiltTables), want)
}

// TestRebuildDryRunWritesNothing: a dry run counts and estimates, and
// leaves every table as it was.
func TestRebuildDryRunWritesNothing(t *testing.T) {
	conn, _ := newDB(t)
	s := testenv.Store(t)
	ws := uuid.New()
	history(t, s, ws, 30)
	live := startLiveProjection(t, s, conn)
	live.publish()
	namesBefore := tableNames(t, conn)
	before := snapshot(t, conn, append(slices.Clone(rebuiltTables), "projection_rebuilds", "projection_versions"))

	report := rebuild(t, projections.RebuildConfig{ClickHouse: conn, Events: s, DryRun: true})
	if report.Events != 120 || report.Rows["tickets"] != 30 || report.Rows["customers"] != 30 ||
		report.Rows["audit_log"] != 120 || report.Rows["ticket_messages"] != 60 {
		t.Errorf("dry run: events %d, rows %v; want 120 events, 30 tickets, 30 customers, 60 messages, 120 audit rows",
			report.Events, report.Rows)
	}
	if report.Estimate <= 0 {
		t.Errorf("dry run estimates %v", report.Estimate)
	}
	if names := tableNames(t, conn); !slices.Equal(names, namesBefore) {
		t.Errorf("dry run changed the tables: %v, was %v", names, namesBefore)
	}
	after := snapshot(t, conn, append(slices.Clone(rebuiltTables), "projection_rebuilds", "projection_versions"))
	for table, rows := range before {
		if !slices.Equal(after[table], rows) {
			t.Errorf("dry run changed %s", table)
		}
	}
}

// TestRebuildSubsetLeavesTheRest: --tables customers swaps only customers;
// tickets, api_requests and projection_positions stay as they were.
func TestRebuildSubsetLeavesTheRest(t *testing.T) {
	conn, _ := newDB(t)
	s := testenv.Store(t)
	ws := uuid.New()
	history(t, s, ws, 10)
	live := startLiveProjection(t, s, conn)
	live.publish()
	if err := conn.Exec(context.Background(), `INSERT INTO api_requests (time, request_id, method, route, path, status)
		SELECT now(), 'req_keep', 'GET', '/v1/tickets', '/v1/tickets', toUInt16(200)`); err != nil {
		t.Fatal(err)
	}
	untouched := []string{"tickets", "tickets_by_created", "api_requests", "projection_positions"}
	before := snapshot(t, conn, untouched)
	wantCustomers := snapshot(t, conn, []string{"customers"})

	report := rebuild(t, projections.RebuildConfig{ClickHouse: conn, Events: s, Tables: []string{"customers"}})
	if !slices.Equal(report.Tables, []string{"customers"}) {
		t.Errorf("rebuilt %v, want customers", report.Tables)
	}
	names := tableNames(t, conn)
	for _, name := range names {
		if strings.HasSuffix(name, "__old") && name != "customers__old" {
			t.Errorf("%s was swapped out too", name)
		}
		if strings.HasPrefix(name, "api_requests_") {
			t.Errorf("the rebuild made %s", name)
		}
	}
	if !slices.Contains(names, "customers__old") {
		t.Errorf("customers was not swapped: %v", names)
	}
	sameContents(t, "customers", snapshot(t, conn, []string{"customers"}), wantCustomers)
	after := snapshot(t, conn, untouched)
	for _, table := range untouched {
		if !slices.Equal(after[table], before[table]) {
			t.Errorf("%s changed", table)
		}
	}

	if _, err := projections.Rebuild(context.Background(), projections.RebuildConfig{ClickHouse: conn, Events: s,
		Tables: []string{"api_requests"}}); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
		t.Errorf("a rebuild of api_requests returned %v, want EValidation", err)
	}
}

// TestRebuildSchemaChange: a new version of a table's definition is built
// from the events and swapped in, its version recorded, and the list
// tables are still fed by the views.
func TestRebuildSchemaChange(t *testing.T) {
	conn, _ := newDB(t)
	s := testenv.Store(t)
	ws := uuid.New()
	history(t, s, ws, 12)
	live := startLiveProjection(t, s, conn)
	live.publish()

	cfg := projections.RebuildConfig{ClickHouse: conn, Events: s, Tables: []string{"tickets"}}
	projections.ChangeDefinition(&cfg, "tickets", 2, func(ddl string) string {
		return strings.Replace(ddl, "    updated_at_ms Int64\n", "    updated_at_ms Int64,\n    subject_length UInt64 DEFAULT length(subject)\n", 1)
	})
	report := rebuild(t, cfg)
	if report.Versions["tickets"] != 2 {
		t.Errorf("report versions %v, want tickets at 2", report.Versions)
	}
	if got := queryUint(t, conn, "SELECT toUInt64(max(version)) FROM projection_versions WHERE table_name = 'tickets'"); got != 2 {
		t.Errorf("projection_versions records tickets at %d, want 2", got)
	}
	if got := queryUint(t, conn, "SELECT count() FROM tickets FINAL WHERE subject_length = length(subject) AND subject_length > 0"); got != 12 {
		t.Errorf("%d tickets have the new column filled, want 12", got)
	}
	more, _ := history(t, s, ws, 1)
	live.publish()
	if n := queryUint(t, conn, "SELECT count() FROM tickets_by_created FINAL WHERE ticket_id = toUUID('"+more[0].String()+"')"); n != 1 {
		t.Errorf("a ticket created after the schema change has %d rows in tickets_by_created, want 1", n)
	}
}

package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup"
	"github.com/helpdeskflow/helpdeskflow/clients/slack"
	"github.com/helpdeskflow/helpdeskflow/clients/slack/slacktest"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
	"github.com/helpdeskflow/helpdeskflow/dispatch/handlers"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/store/connections"
	outboundstore "github.com/helpdeskflow/helpdeskflow/store/outbound"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// outboundFixture is the outbound handlers (handlers.All) on a database
// that counts its statements, with workspaces that each have an active
// webhook for every event and Slack connected with a new-ticket channel.
type outboundFixture struct {
	t          *testing.T
	ctx        context.Context
	db         *pg.DB // counts its statements
	plain      *pg.DB // the same database, for the test's own queries
	statements *testenv.Statements
	events     *eventstore.Store
	svc        *testenv.Commands
	queues     *queues.Store
	handlers   []dispatch.Handler
	md         helpdeskflow.Metadata
}

// noTokens stands in for integrations.Manager: the dispatcher only asks
// the linker which connections to queue lookups for, never for a token.
type noTokens struct{}

func (noTokens) AccessToken(context.Context, uuid.UUID, uuid.UUID) (string, error) { return "", nil }
func (noTokens) TokenRevoked(context.Context, uuid.UUID, uuid.UUID, string) error  { return nil }

// webhookRooms are the webhooks and their delivery queue, as the
// webhook handler uses them.
type webhookRooms struct {
	*outboundstore.Store
	queues *queues.Store
}

func (r webhookRooms) EnqueueDeliveries(ctx context.Context, ds []helpdeskflow.Delivery) error {
	return r.queues.EnqueueDeliveries(ctx, ds)
}

func newOutboundFixture(t *testing.T) *outboundFixture {
	t.Helper()
	db, statements := testenv.CountingPostgres(t)
	plain, err := pg.Connect(context.Background(), db.Pool().Config().ConnString(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	events := testenv.StoreOn(t, db)
	spec, err := secretbox.NewKey("t1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	fake := slacktest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetToken("xoxb-1-good")
	svc := testenv.NewCommands(events, testenv.CommandOptions{Sealer: keys, AllowLoopback: true, Slack: slack.New(fake.URL(), nil)})
	linker, err := linkedprofiles.New(linkedprofiles.Config{Connections: connections.New(db, events), Tokens: noTokens{},
		Lookup: profilelookup.New(nil), Customers: svc.Tickets, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	q := queues.New(db)
	out := outboundstore.New(db)
	all := handlers.All(handlers.Config{Outbound: &handlers.Outbound{
		Webhooks: webhookRooms{out, q}, Slack: out, Jobs: q, Linker: linker}})
	return &outboundFixture{t: t, ctx: context.Background(), db: db, plain: plain, statements: statements, events: events, svc: svc, queues: q,
		handlers: all, md: helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}}
}

// workspace creates a workspace with a webhook for every event and Slack
// connected with a new-ticket channel.
func (f *outboundFixture) workspace() uuid.UUID {
	f.t.Helper()
	ws, _, err := f.svc.Access.CreateWorkspace(f.ctx, f.md, "batch")
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.Outbound.CreateWebhook(f.ctx, ws, f.md, outbound.CreateWebhook{URL: "http://127.0.0.1:9/hook", EventTypes: []string{"*"}}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.Outbound.ConnectSlack(f.ctx, ws, f.md, outbound.ConnectSlack{BotToken: "xoxb-1-good",
		Channels: helpdeskflow.SlackChannels{NewTicket: "#new"}}); err != nil {
		f.t.Fatal(err)
	}
	return ws
}

// createTickets creates n tickets, each for a new customer, round robin
// over workspaces, and returns the events they stored after position from.
func (f *outboundFixture) createTickets(n int, workspaces []uuid.UUID, from helpdeskflow.Position) []helpdeskflow.Event {
	f.t.Helper()
	for i := range n {
		ws := workspaces[i%len(workspaces)]
		if _, err := f.svc.Tickets.CreateTicket(f.ctx, ws, f.md, tickets.CreateTicket{Subject: fmt.Sprintf("ticket %d", i),
			Customer: tickets.CustomerRef{Email: fmt.Sprintf("c%d-%s@example.com", i, uuid.NewString()[:8])},
			Message:  tickets.NewTicketMessage{Body: "hello"}}); err != nil {
			f.t.Fatal(err)
		}
	}
	var stored int
	if err := f.db.Pool().QueryRow(f.ctx, `SELECT count(*) FROM events WHERE (tx_id, seq) > ($1::text::xid8, $2)`,
		fmt.Sprint(from.TxID), from.Seq).Scan(&stored); err != nil {
		f.t.Fatal(err)
	}
	var out []helpdeskflow.Event
	testenv.Eventually(f.t, 15*time.Second, func() error {
		var err error
		out, err = f.events.ReadAfter(f.ctx, from, 10000, uuid.Nil)
		if err == nil && len(out) < stored {
			err = fmt.Errorf("%d of %d events readable (the commit horizon is cluster-wide)", len(out), stored)
		}
		return err
	})
	return out
}

// publish publishes events as the relay does.
func publish(t *testing.T, brokers []string, events []helpdeskflow.Event) {
	t.Helper()
	records := make([]*kgo.Record, len(events))
	for i, e := range events {
		r, err := kafka.NewRecord(kafka.TopicEvents, e)
		if err != nil {
			t.Fatal(err)
		}
		records[i] = r
	}
	produceRecords(t, brokers, records...)
}

// waitRecorded waits until the dispatcher of consumer has recorded the
// progress of events, so their batches' writes are done.
func waitRecorded(t *testing.T, db *pg.DB, consumer string, events []helpdeskflow.Event) {
	t.Helper()
	latest := map[uuid.UUID]int64{}
	for _, e := range events {
		latest[e.StreamID] = max(latest[e.StreamID], e.Version)
	}
	streams, versions := make([]uuid.UUID, 0, len(latest)), make([]int64, 0, len(latest))
	for id, v := range latest {
		streams, versions = append(streams, id), append(versions, v)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		var recorded int
		err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM dispatch_progress p
			JOIN unnest($2::uuid[], $3::bigint[]) AS w(stream_id, version) ON p.stream_id = w.stream_id AND p.version >= w.version
			WHERE p.consumer = $1`, consumer, streams, versions).Scan(&recorded)
		if err == nil && recorded < len(latest) {
			err = fmt.Errorf("the progress of %d of %d streams is recorded", recorded, len(latest))
		}
		return err
	})
}

// dispatchAll publishes events as the relay does, runs a dispatcher with
// the outbound handlers until it has handled them all, stops it and
// returns the statements it sent meanwhile and how many batches it
// recorded progress for.
func (f *outboundFixture) dispatchAll(events []helpdeskflow.Event) (total, batches int, bySQL map[string]int, failures float64) {
	f.t.Helper()
	_, brokers := testenv.Kafka(f.t)
	publish(f.t, brokers, events)
	reg := prometheus.NewRegistry()
	cfg := config(brokers, f.db, "batch-"+uuid.NewString()[:8], reg, f.handlers...)
	f.statements.Reset()
	stop := start(f.t, cfg)
	waitRecorded(f.t, f.plain, cfg.Group, events)
	stop()
	failures = testenv.Metric(f.t, reg, "helpdeskflow_dispatch_errors_total") + testenv.Metric(f.t, reg, "helpdeskflow_dispatch_internal_errors_total")
	bySQL = f.statements.BySQL()
	for sql, n := range bySQL {
		total += n
		if strings.Contains(sql, "INSERT INTO dispatch_progress") {
			batches += n
		}
	}
	return total, batches, bySQL, failures
}

// A batch of events across several workspaces costs the dispatcher a
// fixed number of statements, whatever the number of events: the
// progress is read and written once, the webhooks, Slack settings and
// lookup connections of all the batch's workspaces are read at once, and
// what the handlers queue is written together.
func TestDispatcher_StatementsPerBatchDoNotGrowWithItsEvents(t *testing.T) {
	f := newOutboundFixture(t)
	workspaces := []uuid.UUID{f.workspace(), f.workspace(), f.workspace()}
	events := f.createTickets(30, workspaces, helpdeskflow.Position{})
	if len(events) < 60 {
		t.Fatalf("created %d events; want at least a customer and a ticket event per ticket", len(events))
	}
	total, batches, bySQL, failures := f.dispatchAll(events)
	if batches == 0 {
		t.Fatal("no progress was written")
	}
	t.Logf("%d events in %d batches: %d statements", len(events), batches, total)
	const perBatch = 12
	var over []string
	for sql, n := range bySQL {
		if n > batches {
			over = append(over, fmt.Sprintf("%d× %s", n, strings.Join(strings.Fields(sql), " ")))
		}
	}
	slices.Sort(over)
	if len(over) > 0 || total > perBatch*batches {
		t.Fatalf("%d events in %d batches cost %d statements (want at most %d per batch; handler failures %v); sent more often than once per batch:\n%s",
			len(events), batches, total, perBatch, failures, strings.Join(over, "\n"))
	}
	// What the handlers queued is there: a delivery per event (every
	// workspace's webhook takes every event) and a Slack job per ticket.
	var deliveries, jobs int
	if err := f.plain.Pool().QueryRow(f.ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&deliveries); err != nil {
		t.Fatal(err)
	}
	if err := f.plain.Pool().QueryRow(f.ctx, `SELECT count(*) FROM integration_jobs WHERE kind = $1`, helpdeskflow.JobSlackNotification).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if deliveries != len(events) || jobs != 30 {
		t.Fatalf("queued %d deliveries and %d Slack jobs; want %d and 30", deliveries, jobs, len(events))
	}
}

// Nothing a batch reads outlives it: a webhook paused or created between
// two batches is seen by the second (the paused one's deliveries are
// recorded, to be held until it is resumed).
func TestDispatcher_WebhookChangesReachTheNextBatch(t *testing.T) {
	f := newOutboundFixture(t)
	ws := f.workspace()
	hooks, err := outboundstore.New(f.db).Webhooks(f.ctx, ws, uuid.Nil, 10)
	if err != nil || len(hooks) != 1 {
		t.Fatalf("webhooks %v, %v", hooks, err)
	}
	first := hooks[0].ID
	_, brokers := testenv.Kafka(t)
	start(t, config(brokers, f.db, "changes", prometheus.NewRegistry(), f.handlers...))
	from := helpdeskflow.Position{}
	dispatchTicket := func() []helpdeskflow.Event {
		events := f.createTickets(1, []uuid.UUID{ws}, from)
		from = events[len(events)-1].Position
		publish(t, brokers, events)
		waitRecorded(t, f.plain, "changes", events)
		return events
	}
	hooksOf := func(e helpdeskflow.Event) []uuid.UUID {
		rows, err := f.plain.Pool().Query(f.ctx, `SELECT webhook_id FROM webhook_deliveries WHERE event_id = $1`, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uuid.UUID
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	for _, e := range dispatchTicket() {
		if got := hooksOf(e); !slices.Equal(got, []uuid.UUID{first}) {
			t.Fatalf("before the change %s went to %v, want the first webhook %s", e.Type, got, first)
		}
	}
	off := false
	if _, err := f.svc.Outbound.UpdateWebhook(f.ctx, ws, f.md, first, outbound.UpdateWebhook{Active: &off}); err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.Outbound.CreateWebhook(f.ctx, ws, f.md, outbound.CreateWebhook{URL: "http://127.0.0.1:9/second", EventTypes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range dispatchTicket() {
		got := hooksOf(e)
		slices.SortFunc(got, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		want := []uuid.UUID{first, second.ID}
		slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		if !slices.Equal(got, want) {
			t.Fatalf("after the change %s went to %v, want the paused webhook %s (held) and the new one %s", e.Type, got, first, second.ID)
		}
	}
}

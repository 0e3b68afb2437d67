package projections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/dispatch/handlers"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/kafka/recordlog"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// Webhook attempts made by the real delivery worker against receivers on
// 127.0.0.1, and mailbox sync runs of the real mail sync worker against the
// test Dovecot, reach ClickHouse through recordlog, kfake and the
// FactsProjector, over two days of an injected clock; the two queries of
// docs/analytics.md's "Delivery and mailbox facts" answer what happened.
func TestServiceFacts_DocQueriesOnRealDeliveriesAndSyncs(t *testing.T) {
	var failureRate, mailVolume docQuery
	for _, q := range readDocQueries(t) {
		if q.section != factsSection {
			continue
		}
		switch q.name {
		case "webhook_failure_rate_per_endpoint":
			failureRate = q
		case "mail_import_volume_per_mailbox":
			mailVolume = q
		default:
			t.Errorf("%s: query %q of %q has no check here", analyticsDoc, q.name, factsSection)
		}
	}
	if failureRate.sql == "" || mailVolume.sql == "" {
		t.Fatalf("%s lacks the queries of %q", analyticsDoc, factsSection)
	}
	conn, _ := newDB(t)
	_, brokers := testenv.Kafka(t)
	facts, err := recordlog.New(recordlog.Config{Name: recordlog.NameServiceFacts, Topic: kafka.TopicServiceFacts, Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	cfg, reg := testConfig(t, conn, brokers, "g-facts", nil)
	projector, err := projections.NewFactsProjector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, "facts projector", reg, projector.Run)

	ctx := context.Background()
	store := testenv.NewRooms(t)
	spec, _ := secretbox.NewKey("t1")
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	svc := testenv.NewCommands(store.EventStore, testenv.CommandOptions{Sealer: keys, AllowLoopback: true})
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}
	ws, _, err := svc.Access.CreateWorkspace(ctx, md, "facts")
	if err != nil {
		t.Fatal(err)
	}
	// The workers' clock: day 1 is now, day 2 a day later.
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }

	// Three receivers: one always answers 204, one fails every first
	// attempt with 500, one answers 410 (the delivery gives up after
	// its 3 attempts) on day 1 and 204 on day 2.
	var day2 atomic.Bool
	receiver := func(answer func(r *http.Request) int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(answer(r)) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	okURL := receiver(func(*http.Request) int { return 204 })
	flakyURL := receiver(func(r *http.Request) int {
		if r.Header.Get("X-HDF-Attempt") == "1" {
			return 500
		}
		return 204
	})
	goneURL := receiver(func(*http.Request) int {
		if day2.Load() {
			return 204
		}
		return 410
	})
	subscribe := func(url string) uuid.UUID {
		w, err := svc.Outbound.CreateWebhook(ctx, ws, md, outbound.CreateWebhook{URL: url, EventTypes: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	hooks := []uuid.UUID{subscribe(okURL + "/hooks?token=s3cret"), subscribe(flakyURL), subscribe(goneURL)}
	worker, err := pollers.NewDeliveryWorker(pollers.DeliveryWorkerConfig{Store: store, Secrets: keys, Now: now,
		Sender:      webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: 5 * time.Second}),
		BackoffBase: 20 * time.Millisecond, BackoffFactor: 2, PollInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Outcomes: facts})
	if err != nil {
		t.Fatal(err)
	}
	stopDeliveries := testenv.Run(t, worker.Run)
	deliver := func(events int) {
		t.Helper()
		for range events {
			e := helpdeskflow.Event{ID: uuid.New(), Type: helpdeskflow.EventTicketCreated, SchemaVersion: 1, StreamID: uuid.New(),
				StreamType: helpdeskflow.StreamTicket, Version: 1, WorkspaceID: ws, OccurredAt: now().UTC(), Data: json.RawMessage(`{}`)}
			if err := (handlers.Webhooks{Store: store}).Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			for _, h := range hooks {
				if ds, err := store.Deliveries(ctx, ws, h, helpdeskflow.DeliveryPending, uuid.Nil, 100); err != nil || len(ds) > 0 {
					return fmt.Errorf("webhook %s: %d pending (%v)", h, len(ds), err)
				}
			}
			return nil
		})
	}
	day1 := now()
	deliver(3)
	offset.Store(int64(24 * time.Hour))
	day2.Store(true)
	day2At := now()
	deliver(2)
	stopDeliveries()

	// A mailbox on the test Dovecot: day 1 a customer's mail and an
	// auto-reply, day 2 one more mail.
	env := imapmailtest.Env(t)
	box := imapmailtest.NewMailbox(t, env)
	smtp := imapmailtest.NewSMTPServer(t, imapmailtest.SMTPOptions{Username: env.User, Password: env.Password, DeliverTo: box, DeliverEnv: env})
	manager, err := integrations.New(integrations.Config{Store: integrations.AdaptStore(store.ConnectionStore), Sealer: keys,
		StateKey: bytes.Repeat([]byte("k"), 32), Now: now,
		IMAPOptions: []imapmail.Option{imapmailtest.AllowLoopback, imapmail.WithTLSConfig(imapmailtest.TLSConfig(env.CAPEM, smtp.CAPEM))}})
	if err != nil {
		t.Fatal(err)
	}
	settings := env.Settings(imapmail.SecurityTLS, box)
	smtp.Apply(&settings, imapmail.SecurityStartTLS)
	offset.Store(0)
	mbox, err := manager.ConnectIMAP(ctx, ws, md, settings)
	if err != nil {
		t.Fatal(err)
	}
	sync := mailsync.NewWorker(mailsync.Config{Store: store, Importer: svc.Tickets, Tokens: manager, IMAP: manager, Now: now,
		Results: facts, Logger: slog.New(slog.DiscardHandler)})
	mail := func(from, id string, extra ...string) {
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Order %s\r\nMessage-ID: <%s@example.com>\r\nDate: %s\r\n%s"+
			"Content-Type: text/plain; charset=utf-8\r\n\r\nWhere is my order?\r\n",
			from, mbox.Account, id, id, time.Now().UTC().Format(time.RFC1123Z), strings.Join(append(extra, ""), "\r\n"))
		imapmailtest.Append(t, env, box, []byte(raw), time.Now())
	}
	syncAt := func(d time.Duration) {
		t.Helper()
		offset.Store(int64(d))
		if n, err := sync.SyncDue(ctx); err != nil || n != 1 {
			t.Fatalf("synced %d mailboxes: %v", n, err)
		}
	}
	mail("ann@example.com", "m1")
	mail("ann@example.com", "m2", "Auto-Submitted: auto-replied")
	syncAt(2 * time.Minute)
	mail("bob@example.org", "m3")
	syncAt(24*time.Hour + 4*time.Minute)

	closeCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := facts.Close(closeCtx); err != nil {
		t.Fatalf("facts log: %v", err)
	}
	// 3 events: ok 3 attempts, flaky 6, gone 9; then 2 events, 2 + 4 + 2.
	eventually(t, wait, "every fact in ClickHouse", func() bool {
		return queryUint(t, conn, "SELECT count() FROM webhook_attempts FINAL") == 26 &&
			queryUint(t, conn, "SELECT count() FROM mail_syncs FINAL") == 2
	})

	dayOf := func(at time.Time) string {
		var d time.Time
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT toDate(toDateTime(%d))", at.Unix())).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d.Format(time.DateOnly)
	}
	d1, d2 := dayOf(day1), dayOf(day2At)
	params := map[string]string{"workspace": "toUUID('" + ws.String() + "')",
		"from": "toDate('" + day1.Add(-48*time.Hour).UTC().Format(time.DateOnly) + "')",
		"to":   "toDate('" + day2At.Add(48*time.Hour).UTC().Format(time.DateOnly) + "')"}

	type rateRow struct {
		Day                      string
		Webhook                  uuid.UUID
		Endpoint                 string
		Attempts, FailedAttempts uint64
		Rate                     float64
		DeliveriesFailed         uint64
	}
	var rates []rateRow
	queryRows(t, conn, bindParameters(t, failureRate, params), func(rows driver.Rows) error {
		var r rateRow
		var day time.Time
		err := rows.Scan(&day, &r.Webhook, &r.Endpoint, &r.Attempts, &r.FailedAttempts, &r.Rate, &r.DeliveriesFailed)
		r.Day = day.Format(time.DateOnly)
		rates = append(rates, r)
		return err
	})
	wantRates := []rateRow{
		{d1, hooks[0], okURL + "/hooks", 3, 0, 0, 0},
		{d1, hooks[1], flakyURL, 6, 3, 0.5, 0},
		{d1, hooks[2], goneURL, 9, 9, 1, 3},
		{d2, hooks[0], okURL + "/hooks", 2, 0, 0, 0},
		{d2, hooks[1], flakyURL, 4, 2, 0.5, 0},
		{d2, hooks[2], goneURL, 2, 0, 0, 0},
	}
	// Ordered by day; within a day by webhook id in ClickHouse's UUID
	// order, which is not Go's: compared as sets.
	for i := 1; i < len(rates); i++ {
		if rates[i].Day < rates[i-1].Day {
			t.Errorf("webhook failure rate rows not in day order: %+v", rates)
		}
	}
	byDayAndWebhook := func(a, b rateRow) int { return strings.Compare(a.Day+a.Webhook.String(), b.Day+b.Webhook.String()) }
	slices.SortFunc(rates, byDayAndWebhook)
	slices.SortFunc(wantRates, byDayAndWebhook)
	if fmt.Sprint(rates) != fmt.Sprint(wantRates) {
		t.Errorf("webhook failure rate per endpoint:\n got %+v\nwant %+v", rates, wantRates)
	}

	type volumeRow struct {
		Day                       string
		Connection                uuid.UUID
		Provider                  string
		Runs, FailedRuns          uint64
		Imported, Skipped, Failed uint64
	}
	var volumes []volumeRow
	queryRows(t, conn, bindParameters(t, mailVolume, params), func(rows driver.Rows) error {
		var r volumeRow
		var day time.Time
		err := rows.Scan(&day, &r.Connection, &r.Provider, &r.Runs, &r.FailedRuns, &r.Imported, &r.Skipped, &r.Failed)
		r.Day = day.Format(time.DateOnly)
		volumes = append(volumes, r)
		return err
	})
	wantVolumes := []volumeRow{
		{d1, mbox.ID, integrations.Outlook, 1, 0, 1, 1, 0},
		{d2, mbox.ID, integrations.Outlook, 1, 0, 1, 0, 0},
	}
	if fmt.Sprint(volumes) != fmt.Sprint(wantVolumes) {
		t.Errorf("mail import volume per mailbox:\n got %+v\nwant %+v", volumes, wantVolumes)
	}
	// Another workspace sees nothing.
	other := maps.Clone(params)
	other["workspace"] = "toUUID('" + uuid.NewString() + "')"
	queryRows(t, conn, bindParameters(t, failureRate, other), func(driver.Rows) error { return fmt.Errorf("a row of another workspace") })
}

// queryRows runs query with params and calls scan for each row.
func queryRows(t *testing.T, conn driver.Conn, query string, scan func(driver.Rows) error) {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, query)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// A record without a known hdf-fact header, or whose value is not the fact
// it names, is counted and skipped; the facts around it are written, and a
// redelivered fact collapses onto its row.
func TestFactsProjector_SkipsWhatIsNotAFact(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	_, brokers := testenv.Kafka(t)
	attempt := helpdeskflow.WebhookAttemptFact{Time: time.Date(2026, 3, 1, 10, 0, 0, 250_000_000, time.UTC), WorkspaceID: uuid.New(),
		WebhookID: uuid.New(), DeliveryID: uuid.New(), EventID: uuid.New(), EventType: "ticket.created", Endpoint: "https://example.com/h",
		Attempt: 2, Outcome: helpdeskflow.AttemptRetrying, ErrorClass: "timeout", Duration: 1500 * time.Microsecond}
	value, _ := json.Marshal(attempt)
	fact := func(kind string, value []byte) *kgo.Record {
		r := &kgo.Record{Topic: kafka.TopicServiceFacts, Value: value}
		if kind != "" {
			r.Headers = []kgo.RecordHeader{{Key: kafka.HeaderFact, Value: []byte(kind)}}
		}
		return r
	}
	produceRecords(t, brokers,
		fact("", value), fact("ticket_closed", value), fact(helpdeskflow.FactMailSync, value), fact(helpdeskflow.FactWebhookAttempt, []byte("{")),
		fact(helpdeskflow.FactWebhookAttempt, value), fact(helpdeskflow.FactWebhookAttempt, value))
	cfg, reg := testConfig(t, conn, brokers, "g-facts-skip", nil)
	p, err := projections.NewFactsProjector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rp := runInBackground(t, "facts projector", reg, p.Run)
	eventually(t, wait, "the attempt written and the rest skipped", func() bool {
		return rp.metric(t, "helpdeskflow_service_facts_projector_rows_total") == 2 &&
			rp.metric(t, "helpdeskflow_service_facts_projector_errors_total", "kind", kafka.ErrKindDecode) == 4
	})
	if n := queryUint(t, conn, "SELECT count() FROM webhook_attempts FINAL"); n != 1 {
		t.Errorf("%d rows under FINAL, want the redelivered fact collapsed into 1", n)
	}
	var endpoint, outcome, class string
	var ms uint16
	var durationUs uint64
	if err := conn.QueryRow(context.Background(), "SELECT endpoint, outcome, error_class, time_ms, duration_us FROM webhook_attempts FINAL").
		Scan(&endpoint, &outcome, &class, &ms, &durationUs); err != nil {
		t.Fatal(err)
	}
	if endpoint != attempt.Endpoint || outcome != attempt.Outcome || class != "timeout" || ms != 250 || durationUs != 1500 {
		t.Errorf("row: %s %s %s %d %d", endpoint, outcome, class, ms, durationUs)
	}
}

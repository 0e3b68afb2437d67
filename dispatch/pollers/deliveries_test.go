package pollers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/dispatch/handlers"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// receiver is a webhook endpoint whose answers the test scripts.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, r received) int // status for the n-th request (1-based)
}

type received struct {
	EventID, Type, DeliveryID, Signature string
	Attempt                              int
	Body                                 []byte
	Version                              int64
	Ticket                               string // the test events' stream
	Status                               int    // the answer
	Header                               http.Header
}

func newReceiver(t *testing.T, answer func(n int, r received) int) *receiver {
	rc := &receiver{t: t, answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		attempt, _ := strconv.Atoi(r.Header.Get("X-HDF-Attempt"))
		got := received{EventID: r.Header.Get("X-HDF-Event-Id"), Type: r.Header.Get("X-HDF-Event-Type"),
			DeliveryID: r.Header.Get("X-HDF-Delivery-Id"), Signature: r.Header.Get("X-HDF-Signature"), Attempt: attempt, Body: body,
			Header: r.Header.Clone()}
		var p struct {
			Data struct {
				Version int64  `json:"version"`
				Ticket  string `json:"ticket"`
			} `json:"data"`
		}
		json.Unmarshal(body, &p) //nolint:errcheck // only the test events carry a version
		got.Version, got.Ticket = p.Data.Version, p.Data.Ticket
		rc.mu.Lock()
		rc.got = append(rc.got, got)
		n := len(rc.got)
		rc.mu.Unlock()
		status := 200
		if rc.answer != nil {
			status = rc.answer(n, got)
		}
		rc.mu.Lock()
		rc.got[n-1].Status = status
		rc.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d", status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

type webhookFixture struct {
	t         *testing.T
	ctx       context.Context
	store     testenv.Rooms
	svc       *testenv.Commands
	keys      *secretbox.Keyring
	workspace uuid.UUID
	md        helpdeskflow.Metadata
}

func newWebhookFixture(t *testing.T) *webhookFixture {
	store := testenv.NewRooms(t)
	spec, err := secretbox.NewKey("t1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := &webhookFixture{t: t, ctx: context.Background(), store: store, keys: keys,
		svc: testenv.NewCommands(store.EventStore, testenv.CommandOptions{Sealer: keys, AllowLoopback: true}),
		md:  helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}}
	if f.workspace, _, err = f.svc.Access.CreateWorkspace(f.ctx, f.md, "hooks"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *webhookFixture) subscribe(url string, types ...string) outbound.NewWebhook {
	f.t.Helper()
	w, err := f.svc.Outbound.CreateWebhook(f.ctx, f.workspace, f.md, outbound.CreateWebhook{URL: url, EventTypes: types})
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// publish hands an event to the webhook handler as the dispatcher would.
func (f *webhookFixture) publish(stream uuid.UUID, version int64, eventType string) helpdeskflow.Event {
	f.t.Helper()
	return f.publishIn(f.workspace, stream, version, eventType)
}

// publishIn publishes an event of a workspace's ticket stream; its data
// names the ticket and the version.
func (f *webhookFixture) publishIn(workspace, stream uuid.UUID, version int64, eventType string) helpdeskflow.Event {
	f.t.Helper()
	e := helpdeskflow.Event{ID: uuid.New(), Type: eventType, SchemaVersion: 1, StreamID: stream, StreamType: helpdeskflow.StreamTicket,
		Version: version, WorkspaceID: workspace, OccurredAt: time.Now().UTC(),
		Data: json.RawMessage(fmt.Sprintf(`{"version":%d,"ticket":%q}`, version, stream))}
	if err := (handlers.Webhooks{Store: f.store}).Handle(f.ctx, e); err != nil {
		f.t.Fatal(err)
	}
	return e
}

// worker starts a delivery worker (as a new process would) until the test
// or stop ends it.
func (f *webhookFixture) worker(timeout time.Duration) (stop func()) {
	return f.startWorker(pollers.DeliveryWorkerConfig{Store: f.store,
		Sender:      webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: timeout}),
		BackoffBase: 20 * time.Millisecond, BackoffFactor: 2})
}

// startWorker starts a delivery worker with cfg (the fixture's secrets, a
// 10 ms poll, no log) until the test or stop ends it.
func (f *webhookFixture) startWorker(cfg pollers.DeliveryWorkerConfig) (stop func()) {
	cfg.Secrets, cfg.PollInterval, cfg.Logger = f.keys, 10*time.Millisecond, slog.New(slog.DiscardHandler)
	w, err := pollers.NewDeliveryWorker(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return testenv.Run(f.t, w.Run)
}

func (f *webhookFixture) deliveries(id uuid.UUID, status string) []helpdeskflow.Delivery {
	f.t.Helper()
	ds, err := f.store.Deliveries(f.ctx, f.workspace, id, status, uuid.Nil, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

func TestWebhooks_SignedDeliveryRetriedUntilItSucceeds(t *testing.T) {
	f := newWebhookFixture(t)
	rc := newReceiver(t, func(n int, _ received) int {
		if n <= 2 {
			return 500
		}
		return 204
	})
	hook := f.subscribe(rc.srv.URL, "ticket.created")
	e := f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	f.publish(uuid.New(), 1, helpdeskflow.EventCustomerCreated) // not subscribed
	f.worker(time.Second)

	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(f.deliveries(hook.ID, helpdeskflow.DeliverySucceeded)); n != 1 {
			return fmt.Errorf("%d succeeded", n)
		}
		return nil
	})
	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("want 3 requests (two failures, then success), got %d", len(got))
	}
	for i, r := range got {
		if r.EventID != e.ID.String() || r.Type != "ticket.created" || r.Attempt != i+1 || r.DeliveryID != got[0].DeliveryID {
			t.Errorf("request %d: %+v", i, r)
		}
		if err := webhook.Verify(r.Signature, r.Body, hook.Secret, time.Minute, time.Now()); err != nil {
			t.Errorf("request %d signature: %v", i, err)
		}
		// The Standard Webhooks headers: webhook-id is the event id on
		// every attempt, and the spec's own library verifies the signature.
		if got := r.Header.Get("webhook-id"); got != e.ID.String() {
			t.Errorf("request %d: webhook-id %q, want the event id %s", i, got, e.ID)
		}
		lib, err := standardwebhooks.NewWebhook(hook.Secret)
		if err != nil {
			t.Fatalf("the Standard Webhooks library refuses the secret: %v", err)
		}
		if err := lib.Verify(r.Body, r.Header); err != nil {
			t.Errorf("request %d: the Standard Webhooks library: %v", i, err)
		}
		if err := webhook.VerifyStandard(r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"),
			r.Body, hook.Secret, time.Minute, time.Now()); err != nil {
			t.Errorf("request %d: VerifyStandard: %v", i, err)
		}
		if r.Header.Get(webhook.HeaderReplay) != "" {
			t.Errorf("request %d: a live delivery is marked %s", i, webhook.HeaderReplay)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].Body, &body); err != nil || body["id"] != e.ID.String() || body["workspace_id"] != f.workspace.String() {
		t.Errorf("payload: %s", got[0].Body)
	}
	d := f.deliveries(hook.ID, "")[0]
	if d.Attempts != 3 || len(d.Log) != 3 || d.Log[0].StatusCode != 500 || d.Log[0].ErrorClass != webhook.ErrorClassHTTPStatus ||
		d.Log[0].ResponseBody != "answer 500" || d.Log[2].ErrorClass != "" || d.Log[2].URL != rc.srv.URL {
		t.Errorf("delivery log: %+v", d)
	}
}

func TestWebhooks_PermanentFailureAndRedelivery(t *testing.T) {
	f := newWebhookFixture(t)
	var fixed sync.Mutex
	healthy := false
	rc := newReceiver(t, func(int, received) int {
		fixed.Lock()
		defer fixed.Unlock()
		if healthy {
			return 200
		}
		return 503
	})
	hook := f.subscribe(rc.srv.URL, "*")
	e := f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	// A Kafka redelivery of the same event records nothing new.
	if err := (handlers.Webhooks{Store: f.store}).Handle(f.ctx, e); err != nil {
		t.Fatal(err)
	}
	f.worker(time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(f.deliveries(hook.ID, helpdeskflow.DeliveryFailed)); n != 1 {
			return fmt.Errorf("%d failed", n)
		}
		return nil
	})
	if n := len(rc.requests()); n != 3 {
		t.Errorf("want exactly 3 attempts before failing permanently, got %d", n)
	}
	failed := f.deliveries(hook.ID, helpdeskflow.DeliveryFailed)[0]
	fixed.Lock()
	healthy = true
	fixed.Unlock()
	if err := f.store.Redeliver(f.ctx, f.workspace, hook.ID, failed.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(f.deliveries(hook.ID, helpdeskflow.DeliverySucceeded)); n != 1 {
			return fmt.Errorf("%d succeeded", n)
		}
		return nil
	})
	if n := len(rc.requests()); n != 4 {
		t.Errorf("want one more attempt after redelivery, got %d requests", n)
	}
	if err := f.store.Redeliver(f.ctx, f.workspace, hook.ID, uuid.New(), time.Now()); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		t.Errorf("unknown delivery: %v", err)
	}
}

func TestWebhooks_DeadEndpointDoesNotDelayOthers(t *testing.T) {
	f := newWebhookFixture(t)
	release := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { unblock(); dead.Close() })
	deadHook := f.subscribe(dead.URL, "*")
	var receivers []*receiver
	for range 49 {
		rc := newReceiver(t, nil)
		receivers = append(receivers, rc)
		f.subscribe(rc.srv.URL, "*")
	}
	for range 5 {
		f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	}
	// The dead endpoint hangs for the whole test (its timeout is far away):
	// every other endpoint still gets all five events.
	stop := f.worker(time.Minute)
	defer stop()
	defer unblock() // before stop, which waits for the hanging attempt
	testenv.Eventually(t, 20*time.Second, func() error {
		for i, rc := range receivers {
			if n := len(rc.requests()); n != 5 {
				return fmt.Errorf("endpoint %d got %d of 5", i, n)
			}
		}
		return nil
	})
	if n := len(f.deliveries(deadHook.ID, helpdeskflow.DeliverySucceeded)); n != 0 {
		t.Errorf("the dead endpoint succeeded %d times", n)
	}
}

func TestWebhooks_OrderPerTicketAndRestart(t *testing.T) {
	f := newWebhookFixture(t)
	var mu sync.Mutex
	failedOnce := false
	rc := newReceiver(t, func(_ int, r received) int {
		mu.Lock()
		defer mu.Unlock()
		if r.Version == 2 && !failedOnce {
			failedOnce = true
			return 500
		}
		return 200
	})
	hook := f.subscribe(rc.srv.URL, "*")
	ticket := uuid.New()
	for v := int64(1); v <= 5; v++ {
		f.publish(ticket, v, helpdeskflow.EventTicketUpdated)
	}
	// The first worker stops after version 2 failed (its retry is
	// scheduled); a new worker, as after a restart, continues.
	stop := f.worker(time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !failedOnce {
			return fmt.Errorf("version 2 not attempted yet")
		}
		return nil
	})
	stop()
	f.worker(time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(f.deliveries(hook.ID, helpdeskflow.DeliverySucceeded)); n != 5 {
			return fmt.Errorf("%d of 5 succeeded", n)
		}
		return nil
	})
	var order []int64
	for _, r := range rc.requests() {
		order = append(order, r.Version)
	}
	if fmt.Sprint(order) != "[1 2 2 3 4 5]" {
		t.Errorf("deliveries of one ticket out of order: %v", order)
	}
}

// claimLog is a worker's delivery queue that numbers its claims in the
// order they start and keeps what each returned.
type claimLog struct {
	pollers.DeliveryStore
	mu      sync.Mutex
	started int
	claims  map[int][]uuid.UUID // by start number
}

func (l *claimLog) ClaimDeliveries(ctx context.Context, now time.Time, limit, perWebhook int, room map[uuid.UUID]int, lease time.Duration) ([]queues.ClaimedDelivery, error) {
	l.mu.Lock()
	n := l.started
	l.started++
	l.mu.Unlock()
	out, err := l.DeliveryStore.ClaimDeliveries(ctx, now, limit, perWebhook, room, lease)
	l.mu.Lock()
	for _, c := range out {
		l.claims[n] = append(l.claims[n], c.ID)
	}
	l.mu.Unlock()
	return out, err
}

// claimedBy lists the deliveries returned by claims that started before
// the (started)th, and by that one.
func (l *claimLog) claimedBy(started int) map[uuid.UUID]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[uuid.UUID]bool{}
	for n, ids := range l.claims {
		if n <= started {
			for _, id := range ids {
				out[id] = true
			}
		}
	}
	return out
}

func (l *claimLog) startedSoFar() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started
}

// The outage: 300 tickets with a follow-up update each, to an
// endpoint answering 503 at first and to one whose port is closed, with
// two workers. The queue never wedges: every event reaches the recovered
// endpoint, in order per ticket; every delivery to the closed port fails
// for good after its attempts, in order; and another workspace's events,
// recorded in the middle of the backlog, are claimed by each worker's
// first claim that can see them.
func TestWebhooks_OutageBacklogNeverWedgesTheQueue(t *testing.T) {
	const tickets = 300
	f := newWebhookFixture(t)
	// The outage ends with the first retry, so no delivery fails twice
	// and none reaches its third (last) attempt, however slow the run.
	var outage sync.Mutex
	recovered, refused := false, 0
	flaky := newReceiver(t, func(_ int, r received) int {
		outage.Lock()
		defer outage.Unlock()
		if r.Attempt >= 2 {
			recovered = true
		}
		if recovered {
			return 200
		}
		refused++
		return 503
	})
	f.subscribe(flaky.srv.URL, "*")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/hook"
	closed.Close()
	closedHook := f.subscribe(closedURL, "*")

	ticketIDs := make([]uuid.UUID, tickets)
	for i := range ticketIDs {
		ticketIDs[i] = uuid.New()
		f.publish(ticketIDs[i], 1, helpdeskflow.EventTicketCreated)
	}
	for _, id := range ticketIDs {
		f.publish(id, 2, helpdeskflow.EventTicketUpdated)
	}

	logs := []*claimLog{{DeliveryStore: f.store, claims: map[int][]uuid.UUID{}}, {DeliveryStore: f.store, claims: map[int][]uuid.UUID{}}}
	for _, l := range logs {
		f.startWorker(pollers.DeliveryWorkerConfig{Store: l, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Second}),
			BackoffBase: 300 * time.Millisecond, BackoffFactor: 2})
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		outage.Lock()
		defer outage.Unlock()
		if refused == 0 {
			return fmt.Errorf("the flaky endpoint has refused nothing yet")
		}
		return nil
	})

	// Another workspace's webhook gets events in the middle of the backlog.
	otherWorkspace, _, err := f.svc.Access.CreateWorkspace(f.ctx, f.md, "other")
	if err != nil {
		t.Fatal(err)
	}
	other := newReceiver(t, nil)
	otherHook, err := f.svc.Outbound.CreateWebhook(f.ctx, otherWorkspace, f.md, outbound.CreateWebhook{URL: other.srv.URL, EventTypes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	otherTickets := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range otherTickets {
		f.publishIn(otherWorkspace, id, 1, helpdeskflow.EventTicketCreated)
	}
	firstAfter := []int{logs[0].startedSoFar(), logs[1].startedSoFar()}
	for _, id := range otherTickets {
		f.publishIn(otherWorkspace, id, 2, helpdeskflow.EventTicketUpdated)
	}

	testenv.Eventually(t, 120*time.Second, func() error {
		if n := len(answered(flaky, 200)); n != 2*tickets {
			return fmt.Errorf("the recovered endpoint got %d of %d events", n, 2*tickets)
		}
		if n := len(answered(other, 200)); n != 2*len(otherTickets) {
			return fmt.Errorf("the other workspace's endpoint got %d of %d events", n, 2*len(otherTickets))
		}
		failed, err := f.store.Deliveries(f.ctx, f.workspace, closedHook.ID, helpdeskflow.DeliveryFailed, uuid.Nil, 10*tickets)
		if err != nil {
			return err
		}
		if len(failed) != 2*tickets {
			return fmt.Errorf("%d of %d deliveries to the closed port failed for good", len(failed), 2*tickets)
		}
		return nil
	})

	outage.Lock()
	t.Logf("the flaky endpoint refused %d first attempts before it recovered", refused)
	outage.Unlock()
	for _, rc := range []*receiver{flaky, other} {
		byTicket := map[string][]received{}
		for _, r := range rc.requests() {
			byTicket[r.Ticket] = append(byTicket[r.Ticket], r)
			if r.Attempt > 2 {
				t.Errorf("%s: attempt %d of version %d: the outage outlasted a delivery's second attempt", rc.srv.URL, r.Attempt, r.Version)
			}
		}
		for ticket, rs := range byTicket {
			var got []int64
			for i, r := range rs {
				if r.Status == 200 {
					got = append(got, r.Version)
				}
				if i > 0 && r.Version < rs[i-1].Version {
					t.Errorf("ticket %s: version %d sent after version %d", ticket, r.Version, rs[i-1].Version)
				}
			}
			if fmt.Sprint(got) != "[1 2]" {
				t.Errorf("ticket %s: delivered versions %v, want [1 2]", ticket, got)
			}
		}
	}

	// The other workspace's first events (their tickets' heads) were
	// claimed by each worker's first claim that started after they were
	// recorded (or one before it), not after the backlog.
	ds, err := f.store.Deliveries(f.ctx, otherWorkspace, otherHook.ID, "", uuid.Nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	claimedEarly := logs[0].claimedBy(firstAfter[0])
	for id := range logs[1].claimedBy(firstAfter[1]) {
		claimedEarly[id] = true
	}
	for _, d := range ds {
		if d.StreamVersion == 1 && !claimedEarly[d.ID] {
			t.Errorf("the other workspace's delivery %s was not claimed by the first claim after it was recorded", d.ID)
		}
	}

	// Each delivery to the closed port had its three attempts, a ticket's
	// update only after its creation had failed for good.
	ds, err = f.store.Deliveries(f.ctx, f.workspace, closedHook.ID, "", uuid.Nil, 10*tickets)
	if err != nil {
		t.Fatal(err)
	}
	lastCreate, firstUpdate := map[uuid.UUID]time.Time{}, map[uuid.UUID]time.Time{}
	for _, d := range ds {
		if d.Attempts != 3 || len(d.Log) != 3 || d.Log[2].ErrorClass != webhook.ErrorClassConnectionRefused {
			t.Fatalf("delivery to the closed port: %d attempts, log %+v", d.Attempts, d.Log)
		}
		if d.StreamVersion == 1 {
			lastCreate[d.StreamID] = d.Log[2].StartedAt
		} else {
			firstUpdate[d.StreamID] = d.Log[0].StartedAt
		}
	}
	for ticket, at := range firstUpdate {
		if at.Before(lastCreate[ticket]) {
			t.Errorf("ticket %s: the update was attempted before the creation's last attempt", ticket)
		}
	}
}

// answered lists the requests rc answered with status.
func answered(rc *receiver, status int) []received {
	var out []received
	for _, r := range rc.requests() {
		if r.Status == status {
			out = append(out, r)
		}
	}
	return out
}

// A deleted webhook's pending deliveries are cancelled: never attempted,
// listed as cancelled, and the workspace's other webhook gets every event
// of the same tickets, in order.
func TestWebhooks_DeletedWebhookIsNeverAttempted(t *testing.T) {
	f := newWebhookFixture(t)
	gone, kept := newReceiver(t, nil), newReceiver(t, nil)
	goneHook := f.subscribe(gone.srv.URL, "*")
	f.subscribe(kept.srv.URL, "*")
	tickets := []uuid.UUID{uuid.New(), uuid.New()}
	for v := int64(1); v <= 3; v++ {
		for _, id := range tickets {
			f.publish(id, v, helpdeskflow.EventTicketUpdated)
		}
	}
	if err := f.svc.Outbound.DeleteWebhook(f.ctx, f.workspace, f.md, goneHook.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range tickets {
		f.publish(id, 4, helpdeskflow.EventTicketUpdated)
	}
	f.worker(time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(answered(kept, 200)); n != 8 {
			return fmt.Errorf("the kept webhook got %d of 8 events", n)
		}
		return nil
	})
	if n := len(gone.requests()); n != 0 {
		t.Errorf("the deleted webhook's endpoint got %d requests", n)
	}
	cancelled := f.deliveries(goneHook.ID, helpdeskflow.DeliveryCancelled)
	if len(cancelled) != 6 || len(f.deliveries(goneHook.ID, "")) != 6 {
		t.Errorf("want the deleted webhook's 6 deliveries cancelled (and none for later events), got %d", len(cancelled))
	}
	for _, d := range cancelled {
		if d.Attempts != 0 || d.NextAttemptAt != nil || len(d.Log) != 0 {
			t.Errorf("cancelled delivery: %+v", d)
		}
	}
	byTicket := map[string][]int64{}
	for _, r := range kept.requests() {
		byTicket[r.Ticket] = append(byTicket[r.Ticket], r.Version)
	}
	for ticket, vs := range byTicket {
		if fmt.Sprint(vs) != "[1 2 3 4]" {
			t.Errorf("ticket %s: the kept webhook got versions %v", ticket, vs)
		}
	}
}

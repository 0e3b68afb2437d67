package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/secretbox"
	"github.com/helpdeskflow/helpdeskflow/webhook"
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
}

func newReceiver(t *testing.T, answer func(n int, r received) int) *receiver {
	rc := &receiver{t: t, answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		attempt, _ := strconv.Atoi(r.Header.Get("X-HDF-Attempt"))
		got := received{EventID: r.Header.Get("X-HDF-Event-Id"), Type: r.Header.Get("X-HDF-Event-Type"),
			DeliveryID: r.Header.Get("X-HDF-Delivery-Id"), Signature: r.Header.Get("X-HDF-Signature"), Attempt: attempt, Body: body}
		var p struct {
			Data struct {
				Version int64 `json:"version"`
			} `json:"data"`
		}
		json.Unmarshal(body, &p) //nolint:errcheck // only the test events carry a version
		got.Version = p.Data.Version
		rc.mu.Lock()
		rc.got = append(rc.got, got)
		n := len(rc.got)
		rc.mu.Unlock()
		status := 200
		if rc.answer != nil {
			status = rc.answer(n, got)
		}
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
	store     *eventstore.Store
	svc       *commands.Service
	keys      *secretbox.Keyring
	workspace uuid.UUID
	md        helpdeskflow.Metadata
}

func newWebhookFixture(t *testing.T) *webhookFixture {
	store := testenv.Store(t)
	spec, err := secretbox.NewKey("t1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := &webhookFixture{t: t, ctx: context.Background(), store: store, keys: keys,
		svc: commands.New(commands.AdaptStore(store), commands.WithSecrets(keys, true)),
		md:  helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}}
	if f.workspace, _, err = f.svc.CreateWorkspace(f.ctx, f.md, "hooks"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *webhookFixture) subscribe(url string, types ...string) commands.NewWebhook {
	f.t.Helper()
	w, err := f.svc.CreateWebhook(f.ctx, f.workspace, f.md, commands.CreateWebhook{URL: url, EventTypes: types})
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// publish hands an event to the webhook handler as the dispatcher would.
func (f *webhookFixture) publish(stream uuid.UUID, version int64, eventType string) helpdeskflow.Event {
	f.t.Helper()
	e := helpdeskflow.Event{ID: uuid.New(), Type: eventType, SchemaVersion: 1, StreamID: stream, StreamType: helpdeskflow.StreamTicket,
		Version: version, WorkspaceID: f.workspace, OccurredAt: time.Now().UTC(), Data: json.RawMessage(fmt.Sprintf(`{"version":%d}`, version))}
	if err := (dispatch.WebhookHandler{Store: f.store}).Handle(f.ctx, e); err != nil {
		f.t.Fatal(err)
	}
	return e
}

// worker starts a delivery worker (as a new process would) until the test
// or stop ends it.
func (f *webhookFixture) worker(timeout time.Duration) (stop func()) {
	w, err := dispatch.NewDeliveryWorker(dispatch.DeliveryWorkerConfig{Store: f.store, Secrets: f.keys,
		Sender:      webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: timeout}),
		BackoffBase: 20 * time.Millisecond, BackoffFactor: 2, PollInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }() //nolint:errcheck // nil when ctx ends
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	f.t.Cleanup(stop)
	return stop
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
	if err := (dispatch.WebhookHandler{Store: f.store}).Handle(f.ctx, e); err != nil {
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

package pollers_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// recordLog is a worker's delivery queue that knows which attempts have
// been written (FinishAttempts returned), and can fail the writes (as a
// process that dies between sending and recording).
type recordLog struct {
	pollers.DeliveryStore
	mu       sync.Mutex
	recorded map[uuid.UUID]string // delivery → the last status written
	lose     bool                 // FinishAttempts writes nothing and fails
	claimed  map[uuid.UUID]int    // deliveries claimed, by webhook
	claimsOf map[uuid.UUID]int    // claims of each delivery
	claims   int
}

func newRecordLog(s pollers.DeliveryStore) *recordLog {
	return &recordLog{DeliveryStore: s, recorded: map[uuid.UUID]string{}, claimed: map[uuid.UUID]int{},
		claimsOf: map[uuid.UUID]int{}}
}

func (l *recordLog) ClaimDeliveries(ctx context.Context, now time.Time, limit, perWebhook int, room map[uuid.UUID]int, lease time.Duration) ([]queues.ClaimedDelivery, error) {
	out, err := l.DeliveryStore.ClaimDeliveries(ctx, now, limit, perWebhook, room, lease)
	l.mu.Lock()
	l.claims++
	for _, c := range out {
		l.claimed[c.WebhookID]++
		l.claimsOf[c.ID]++
	}
	l.mu.Unlock()
	return out, err
}

func (l *recordLog) FinishAttempts(ctx context.Context, fs []queues.FinishedAttempt) error {
	l.mu.Lock()
	lose := l.lose
	l.mu.Unlock()
	if lose {
		return errors.New("the process died before it recorded the attempts")
	}
	// A slow write widens the window in which a successor could be sent
	// before its predecessor's outcome is written.
	time.Sleep(5 * time.Millisecond)
	if err := l.DeliveryStore.FinishAttempts(ctx, fs); err != nil {
		return err
	}
	l.mu.Lock()
	for _, f := range fs {
		if !f.Released {
			l.recorded[f.DeliveryID] = f.Status
		}
	}
	l.mu.Unlock()
	return nil
}

// status is delivery id's committed status.
func (f *webhookFixture) status(id uuid.UUID) string {
	var s string
	if err := f.store.DB.Pool().QueryRow(f.ctx, `SELECT status FROM webhook_deliveries WHERE id = $1`, id).Scan(&s); err != nil {
		f.t.Errorf("read delivery %s: %v", id, err)
	}
	return s
}

func (l *recordLog) claimsSoFar() (claims int, of map[uuid.UUID]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	of = map[uuid.UUID]int{}
	for k, v := range l.claimed {
		of[k] = v
	}
	return l.claims, of
}

// A ticket's next event is sent only after its previous one's outcome is
// written: the worker frees a slot as soon as the response is in and
// writes the outcomes in batches (here slow ones), yet no successor goes
// out while its predecessor's success is not committed, also when the
// predecessor failed first and was retried.
func TestWebhooks_SuccessorWaitsForItsPredecessorsRecord(t *testing.T) {
	const tickets, versions = 20, 5
	f := newWebhookFixture(t)
	log := newRecordLog(f.store)
	var mu sync.Mutex
	delivery := map[string]uuid.UUID{} // "ticket/version" → delivery id
	failed := map[string]bool{}
	rc := newReceiver(t, func(_ int, r received) int {
		key := fmt.Sprintf("%s/%d", r.Ticket, r.Version)
		mu.Lock()
		defer mu.Unlock()
		delivery[key] = uuid.MustParse(r.DeliveryID)
		if r.Version > 1 {
			prev, ok := delivery[fmt.Sprintf("%s/%d", r.Ticket, r.Version-1)]
			if !ok {
				t.Errorf("ticket %s: version %d sent before version %d", r.Ticket, r.Version, r.Version-1)
			} else if s := f.status(prev); s != helpdeskflow.DeliverySucceeded {
				t.Errorf("ticket %s: version %d sent while version %d's written status is %q", r.Ticket, r.Version, r.Version-1, s)
			}
		}
		// Every third ticket's version 2 fails once and is retried.
		if r.Version == 2 && r.Ticket[len(r.Ticket)-1]%3 == 0 && !failed[key] {
			failed[key] = true
			return 500
		}
		return 200
	})
	hook := f.subscribe(rc.srv.URL, "*")
	ids := make([]uuid.UUID, tickets)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for v := int64(1); v <= versions; v++ {
		for _, id := range ids {
			f.publish(id, v, helpdeskflow.EventTicketUpdated)
		}
	}
	f.startWorker(pollers.DeliveryWorkerConfig{Store: log, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Second}),
		BackoffBase: 20 * time.Millisecond, BackoffFactor: 2, Concurrency: 16, PerWebhook: 8})
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := len(f.deliveries(hook.ID, helpdeskflow.DeliverySucceeded)); n != tickets*versions {
			return fmt.Errorf("%d of %d succeeded", n, tickets*versions)
		}
		return nil
	})
	byTicket := map[string][]int64{}
	for _, r := range answered(rc, 200) {
		byTicket[r.Ticket] = append(byTicket[r.Ticket], r.Version)
	}
	for ticket, vs := range byTicket {
		if fmt.Sprint(vs) != "[1 2 3 4 5]" {
			t.Errorf("ticket %s: delivered versions %v", ticket, vs)
		}
	}
	mu.Lock()
	t.Logf("%d first attempts failed and were retried", len(failed))
	mu.Unlock()
}

// concurrencyReceiver answers after a short pause and keeps the most
// requests it had in flight at once, per path.
type concurrencyReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	inFlight map[string]int
	most     map[string]int
	requests int
}

func newConcurrencyReceiver(t *testing.T) *concurrencyReceiver {
	c := &concurrencyReceiver{inFlight: map[string]int{}, most: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.inFlight[r.URL.Path]++
		c.most[r.URL.Path] = max(c.most[r.URL.Path], c.inFlight[r.URL.Path])
		c.requests++
		c.mu.Unlock()
		time.Sleep(2 * time.Millisecond) // lets attempts overlap
		c.mu.Lock()
		c.inFlight[r.URL.Path]--
		c.mu.Unlock()
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// However many deliveries the worker holds claimed ahead (its prefetch),
// no more than PerWebhook attempts to one webhook are in flight at once.
func TestWebhooks_PerWebhookCapWithPrefetch(t *testing.T) {
	const perWebhook, each = 3, 80
	f := newWebhookFixture(t)
	rc := newConcurrencyReceiver(t)
	hooks := []string{"/a", "/b"}
	for _, path := range hooks {
		f.subscribe(rc.srv.URL+path, "*")
	}
	for range each {
		f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	}
	log := newRecordLog(f.store)
	f.startWorker(pollers.DeliveryWorkerConfig{Store: log, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Second}),
		Concurrency: 64, PerWebhook: perWebhook, Prefetch: 256})
	testenv.Eventually(t, 30*time.Second, func() error {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.requests != 2*each {
			return fmt.Errorf("%d of %d requests", rc.requests, 2*each)
		}
		return nil
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, path := range hooks {
		if rc.most[path] > perWebhook {
			t.Errorf("webhook %s: %d attempts in flight at once, PerWebhook is %d", path, rc.most[path], perWebhook)
		}
	}
	claims, _ := log.claimsSoFar()
	t.Logf("most in flight: %v; %d claims for %d deliveries", rc.most, claims, 2*each)
}

// A webhook whose attempts hang is claimed only as its slots free up: the
// worker holds no more than PerWebhook of its deliveries, prefetch or not,
// while another webhook's are claimed ahead.
func TestWebhooks_HungEndpointIsNotClaimedAhead(t *testing.T) {
	const perWebhook = 2
	f := newWebhookFixture(t)
	release := make(chan struct{})
	var hungMu sync.Mutex
	hung := 0
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hungMu.Lock()
		hung++
		hungMu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { unblock(); dead.Close() })
	deadHook := f.subscribe(dead.URL, "*")
	live := newReceiver(t, nil)
	f.subscribe(live.srv.URL, "*")
	for range 30 {
		f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	}
	log := newRecordLog(f.store)
	stop := f.startWorker(pollers.DeliveryWorkerConfig{Store: log, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Minute}),
		Concurrency: 16, PerWebhook: perWebhook})
	defer stop()
	defer unblock() // before stop, which waits for the hanging attempts
	testenv.Eventually(t, 20*time.Second, func() error {
		hungMu.Lock()
		defer hungMu.Unlock()
		if n := len(answered(live, 200)); n != 30 || hung != perWebhook {
			return fmt.Errorf("the live endpoint got %d of 30, the dead one hangs on %d", n, hung)
		}
		return nil
	})
	// Some more claims while the dead endpoint's attempts hang.
	claims, _ := log.claimsSoFar()
	testenv.Eventually(t, 20*time.Second, func() error {
		if n, _ := log.claimsSoFar(); n < claims+5 {
			return fmt.Errorf("%d claims after the hang, want 5", n-claims)
		}
		return nil
	})
	_, of := log.claimsSoFar()
	if of[deadHook.ID] != perWebhook {
		t.Errorf("the hung webhook: %d deliveries claimed, want %d (its slots)", of[deadHook.ID], perWebhook)
	}
}

// A process that dies after sending, before it recorded the outcomes,
// loses nothing: its leases run out and another worker sends those
// deliveries again (at least once), each ticket's next event only after.
func TestWebhooks_CrashBetweenSendAndRecordIsRetried(t *testing.T) {
	const tickets = 10
	f := newWebhookFixture(t)
	rc := newReceiver(t, nil)
	hook := f.subscribe(rc.srv.URL, "*")
	ids := make([]uuid.UUID, tickets)
	for i := range ids {
		ids[i] = uuid.New()
		for v := int64(1); v <= 3; v++ {
			f.publish(ids[i], v, helpdeskflow.EventTicketUpdated)
		}
	}
	dying := newRecordLog(f.store)
	dying.lose = true
	stop := f.startWorker(pollers.DeliveryWorkerConfig{Store: dying, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Second}),
		Lease: time.Second})
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := len(rc.requests()); n < tickets {
			return fmt.Errorf("%d of the %d first events sent", n, tickets)
		}
		return nil
	})
	stop()
	// Its leases may have run out meanwhile, and some first events gone
	// out again, but no later event: none of its outcomes was written.
	dyingSent := len(rc.requests())
	for _, r := range rc.requests() {
		if r.Version != 1 {
			t.Fatalf("the dying worker sent version %d of ticket %s: no outcome of it was written", r.Version, r.Ticket)
		}
	}
	f.startWorker(pollers.DeliveryWorkerConfig{Store: f.store, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Second})})
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := len(f.deliveries(hook.ID, helpdeskflow.DeliverySucceeded)); n != 3*tickets {
			return fmt.Errorf("%d of %d succeeded", n, 3*tickets)
		}
		return nil
	})
	// Each ticket's first event went out again after the crash (a later
	// attempt), then the others once each, in order.
	byTicket := map[string][]string{}
	for i, r := range rc.requests() {
		if i >= dyingSent && r.Version == 1 {
			byTicket[r.Ticket] = append(byTicket[r.Ticket], "again")
			continue
		}
		byTicket[r.Ticket] = append(byTicket[r.Ticket], strconv.FormatInt(r.Version, 10)+"#"+strconv.Itoa(r.Attempt))
	}
	for ticket, got := range byTicket {
		s := fmt.Sprint(got)
		if !strings.HasPrefix(s, "[1#1 ") || !strings.HasSuffix(s, " again 2#1 3#1]") {
			t.Errorf("ticket %s: requests (version#attempt) %v, want 1#1, then (after the crash) 1 again, 2#1, 3#1", ticket, got)
		}
	}
}

// A worker that stops gives the deliveries it holds claimed but unsent
// back to the queue: another worker sends them at once, not after their
// lease, and their claim is not counted as an attempt.
func TestWebhooks_StopGivesBackUnsentDeliveries(t *testing.T) {
	const n = 12
	f := newWebhookFixture(t)
	var mu sync.Mutex
	blocked := 0
	unblock := make(chan struct{})
	var unblockOnce sync.Once
	t.Cleanup(func() { unblockOnce.Do(func() { close(unblock) }) })
	first := true
	rc := newReceiver(t, func(int, received) int {
		mu.Lock()
		if first { // fast: the webhook's deliveries are claimed ahead
			first = false
			mu.Unlock()
			return 200
		}
		blocked++
		mu.Unlock()
		<-unblock
		return 200
	})
	hook := f.subscribe(rc.srv.URL, "*")
	for range n {
		f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	}
	log := newRecordLog(f.store)
	hour := time.Hour // a lease that never runs out in the test
	stop := f.startWorker(pollers.DeliveryWorkerConfig{Store: log, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Minute}),
		Concurrency: 1, PerWebhook: 1, Prefetch: 8, Lease: hour})
	testenv.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if _, of := log.claimsSoFar(); blocked != 1 || of[hook.ID] < 3 {
			return fmt.Errorf("%d attempts blocked, %d deliveries claimed", blocked, of[hook.ID])
		}
		return nil
	})
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	unblockOnce.Do(func() { close(unblock) })
	<-stopped
	sent := len(rc.requests())
	for _, d := range f.deliveries(hook.ID, helpdeskflow.DeliveryPending) {
		if d.Attempts != 0 || len(d.Log) != 0 {
			t.Errorf("an unsent delivery after the stop: %d attempts, %d logged", d.Attempts, len(d.Log))
		}
	}
	f.startWorker(pollers.DeliveryWorkerConfig{Store: f.store, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Minute}),
		Lease: hour})
	testenv.Eventually(t, 20*time.Second, func() error {
		if got := len(f.deliveries(hook.ID, helpdeskflow.DeliverySucceeded)); got != n {
			return fmt.Errorf("%d of %d succeeded (%d sent before the stop)", got, n, sent)
		}
		return nil
	})
	if got := len(rc.requests()); got != n {
		t.Errorf("%d requests for %d deliveries: a delivery given back was sent twice, or one sent was not recorded", got, n)
	}
}

// A webhook that answered fast has deliveries claimed ahead of its slots;
// when an attempt turns out slow, the worker gives those back to the
// queue (claimed again as its slots free up, the claim not counted as an
// attempt) instead of holding them behind a slow endpoint.
func TestWebhooks_EndpointTurningSlowGivesBackWhatItHeld(t *testing.T) {
	const n = 12
	f := newWebhookFixture(t)
	rc := newReceiver(t, func(i int, _ received) int {
		if i == 2 {
			time.Sleep(150 * time.Millisecond) // slower than FastAttempt
		}
		return 200
	})
	hook := f.subscribe(rc.srv.URL, "*")
	for range n {
		f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	}
	log := newRecordLog(f.store)
	f.startWorker(pollers.DeliveryWorkerConfig{Store: log, Sender: webhook.NewSender(webhook.Config{AllowLoopback: true, Timeout: time.Minute}),
		Concurrency: 2, PerWebhook: 1, Prefetch: 16, FastAttempt: 50 * time.Millisecond})
	testenv.Eventually(t, 20*time.Second, func() error {
		if got := len(f.deliveries(hook.ID, helpdeskflow.DeliverySucceeded)); got != n {
			return fmt.Errorf("%d of %d succeeded", got, n)
		}
		return nil
	})
	log.mu.Lock()
	again := 0
	for _, c := range log.claimsOf {
		if c > 1 {
			again++
		}
	}
	log.mu.Unlock()
	if again == 0 {
		t.Errorf("no delivery held ahead was given back when the endpoint turned slow")
	}
	reqs := rc.requests()
	if len(reqs) != n {
		t.Errorf("%d requests for %d deliveries", len(reqs), n)
	}
	for _, r := range reqs {
		if r.Attempt != 1 {
			t.Errorf("delivery %s sent as attempt %d: a given-back claim counted as an attempt", r.DeliveryID, r.Attempt)
		}
	}
}

// The worker opens a webhook's secrets once, yet a rotation takes effect
// at the next attempt: a delivery after it is signed with the new secret
// and, during the overlap, the previous one.
func TestWebhooks_RotatedSecretSignsTheNextDelivery(t *testing.T) {
	f := newWebhookFixture(t)
	rc := newReceiver(t, nil)
	hook := f.subscribe(rc.srv.URL, "*")
	f.worker(time.Second)
	f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(answered(rc, 200)); n != 1 {
			return fmt.Errorf("%d of 1 delivered", n)
		}
		return nil
	})
	rotated, err := f.svc.Outbound.RotateWebhookSecret(f.ctx, f.workspace, f.md, hook.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.publish(uuid.New(), 1, helpdeskflow.EventTicketCreated)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(answered(rc, 200)); n != 2 {
			return fmt.Errorf("%d of 2 delivered", n)
		}
		return nil
	})
	got := rc.requests()
	if err := webhook.Verify(got[0].Signature, got[0].Body, hook.Secret, time.Minute, time.Now()); err != nil {
		t.Errorf("before the rotation: %v", err)
	}
	for name, secret := range map[string]string{"new": rotated.Secret, "previous": hook.Secret} {
		if err := webhook.Verify(got[1].Signature, got[1].Body, secret, time.Minute, time.Now()); err != nil {
			t.Errorf("after the rotation, with the %s secret: %v", name, err)
		}
	}
	if n := strings.Count(got[1].Signature, "v1="); n != 2 {
		t.Errorf("after the rotation: %d signatures, want the new secret's and the previous one's", n)
	}
	// webhook-signature too holds one v1 per valid secret, space-separated,
	// and the Standard Webhooks library accepts either secret.
	if n := len(strings.Fields(got[1].Header.Get("webhook-signature"))); n != 2 {
		t.Errorf("after the rotation: webhook-signature %q has %d entries, want 2", got[1].Header.Get("webhook-signature"), n)
	}
	for name, secret := range map[string]string{"new": rotated.Secret, "previous": hook.Secret} {
		lib, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatalf("the library refuses the %s secret: %v", name, err)
		}
		if err := lib.Verify(got[1].Body, got[1].Header); err != nil {
			t.Errorf("after the rotation, the library with the %s secret: %v", name, err)
		}
	}
}

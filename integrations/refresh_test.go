package integrations_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/relay"
)

// tokenResult is what an AccessToken call answered.
type tokenResult struct {
	token string
	err   error
}

// accessTokenAsync calls m.AccessToken in a goroutine.
func (f *fixture) accessTokenAsync(m *integrations.Manager, id uuid.UUID) <-chan tokenResult {
	out := make(chan tokenResult, 1)
	go func() {
		token, err := m.AccessToken(f.ctx, f.workspace, id)
		out <- tokenResult{token, err}
	}()
	return out
}

// waitHeld waits until the fake holds n token requests.
func (f *fixture) waitHeld(n int) {
	f.t.Helper()
	testenv.Eventually(f.t, 10*time.Second, func() error {
		if got := f.fake.Held(); got != n {
			return fmt.Errorf("the fake holds %d token requests, want %d", got, n)
		}
		return nil
	})
}

// receive returns what an AccessToken call answered, failing the test
// after 20 s.
func (f *fixture) receive(ch <-chan tokenResult) tokenResult {
	f.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		f.t.Fatal("AccessToken did not return")
		return tokenResult{}
	}
}

// watchedStore reports each connection read of a Manager (the tokens'
// version and lease as it saw them).
type watchedStore struct {
	integrations.Store
	reads chan helpdeskflow.ConnectionTokens
}

func (s watchedStore) ConnectionTokens(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, helpdeskflow.ConnectionTokens, error) {
	c, tokens, err := s.Store.ConnectionTokens(ctx, workspaceID, id)
	s.reads <- tokens
	return c, tokens, err
}

// watchedManager returns a Manager (another process) whose connection
// reads arrive on the returned channel, which the test must drain.
func (f *fixture) watchedManager(change func(*integrations.Config)) (*integrations.Manager, <-chan helpdeskflow.ConnectionTokens) {
	reads := make(chan helpdeskflow.ConnectionTokens, 1000)
	return f.manager(func(cfg *integrations.Config) {
		cfg.Store = watchedStore{Store: cfg.Store, reads: reads}
		if change != nil {
			change(cfg)
		}
	}), reads
}

// readWithLease waits for a read that saw a refresh lease other than
// except.
func readWithLease(t *testing.T, reads <-chan helpdeskflow.ConnectionTokens, except uuid.UUID) helpdeskflow.ConnectionTokens {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case tokens := <-reads:
			if tokens.Lease.Token != uuid.Nil && tokens.Lease.Token != except {
				return tokens
			}
		case <-timeout:
			t.Fatal("no read saw a refresh lease")
		}
	}
}

// startRelay runs a relay from the fixture's store to brokers until the
// test ends.
func (f *fixture) startRelay(brokers []string) {
	f.t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		f.t.Fatal(err)
	}
	relay, err := relay.New(f.store.EventStore, client, relay.Config{PollInterval: 100 * time.Millisecond, RetryBackoff: 50 * time.Millisecond})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(client.Close) // after the relay stops (cleanups run last first)
	testenv.Run(f.t, relay.Run)
}

// published reports whether the relay publishes an event of workspace to
// the events topic within 20 s.
func published(t *testing.T, brokers []string, workspace uuid.UUID) bool {
	t.Helper()
	client := testenv.TopicReader(t, brokers, kafka.TopicEvents)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		found := false
		client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == kafka.HeaderWorkspaceID && string(h.Value) == workspace.String() {
					found = true
				}
			}
		})
		if found {
			return true
		}
	}
	return false
}

// A token refresh waiting on the provider holds no transaction: events of
// other workspaces committed meanwhile fall below the commit horizon and
// the relay publishes them while the refresh is still outstanding.
func TestManager_RefreshHoldsNoTransaction(t *testing.T) {
	f := newFixture(t)
	// Long enough that only the fake's hold ends the refresh.
	m := f.manager(func(cfg *integrations.Config) {
		cfg.HTTPClient = &http.Client{Timeout: time.Minute}
		cfg.RefreshTimeout = time.Minute
	})
	c := f.connect()
	_, brokers := testenv.Kafka(t)
	f.startRelay(brokers)

	f.clock.Advance(58 * time.Minute)
	release := f.fake.HoldNext()
	defer release()
	refreshed := f.accessTokenAsync(m, c.ID)
	f.waitHeld(1)

	// Nothing keeps a transaction open while the provider is asked.
	var open int
	if err := f.db.Pool().QueryRow(f.ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("%d transaction(s) stay open while a token request is outstanding", open)
	}
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}
	other, _, err := testenv.NewCommands(f.store.EventStore, testenv.CommandOptions{}).Access.CreateWorkspace(f.ctx, md, "another tenant")
	if err != nil {
		t.Fatal(err)
	}
	if !published(t, brokers, other) {
		t.Fatal("another workspace's event was not published while a token refresh was outstanding")
	}
	if got := f.fake.Held(); got != 1 {
		t.Fatalf("the token request ended (%d held) before the event was published: the test proves nothing", got)
	}
	select {
	case r := <-refreshed:
		t.Fatalf("AccessToken returned (%v) while its token request was held", r.err)
	default:
	}

	release()
	r := f.receive(refreshed)
	if r.err != nil || !f.fake.ValidAccessToken(r.token) {
		t.Fatalf("after the provider answered: %q, %v", r.token, r.err)
	}
}

// Two processes asking for an expiring token at once: one refreshes, the
// other waits for its result; both get the new token from one request.
func TestManager_ConcurrentRefreshOneRequest(t *testing.T) {
	f := newFixture(t)
	c := f.connect()
	before, err := f.m.AccessToken(f.ctx, f.workspace, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(58 * time.Minute)
	f.fake.ExpiresIn(3 * time.Hour)
	other, reads := f.watchedManager(nil)

	release := f.fake.HoldNext()
	defer release()
	first := f.accessTokenAsync(f.m, c.ID)
	f.waitHeld(1)
	second := f.accessTokenAsync(other, c.ID)
	// The second read the connection while the first held its lease.
	readWithLease(t, reads, uuid.Nil)
	release()

	a, b := f.receive(first), f.receive(second)
	if a.err != nil || b.err != nil {
		t.Fatalf("errors: %v, %v", a.err, b.err)
	}
	if a.token != b.token || a.token == before || !f.fake.ValidAccessToken(a.token) {
		t.Errorf("tokens %q and %q, want the same new one (before: %q)", a.token, b.token, before)
	}
	if got := f.fake.Refreshes(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
}

// A refresher that dies after taking the lease blocks nobody for longer
// than its lease: meanwhile callers use the current token while it has not
// expired, then the next caller refreshes.
func TestManager_DeadRefresherLeaseRunsOut(t *testing.T) {
	f := newFixture(t)
	m := f.manager(func(cfg *integrations.Config) { cfg.RefreshTimeout = time.Second })
	c := f.connect()
	current, err := m.AccessToken(f.ctx, f.workspace, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(58 * time.Minute)
	f.fake.ExpiresIn(3 * time.Hour)
	// The dead process's lease, taken as a refresh takes it.
	_, tokens, err := f.store.ConnectionTokens(f.ctx, f.workspace, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	dead := helpdeskflow.RefreshLease{Token: uuid.New(), Until: f.clock.Now().Add(10 * time.Minute)}
	if taken, err := f.store.TakeRefreshLease(f.ctx, c.ID, tokens.Version, dead, f.clock.Now()); err != nil || !taken {
		t.Fatalf("take the lease: %v, %v", taken, err)
	}

	if got, err := m.AccessToken(f.ctx, f.workspace, c.ID); err != nil || got != current {
		t.Errorf("while the lease lasts and the token is valid: %q, %v; want the current token", got, err)
	}
	f.clock.Advance(3 * time.Minute) // the token has expired, the lease has not
	if _, err := m.AccessToken(f.ctx, f.workspace, c.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnavailable {
		t.Errorf("while the lease lasts and the token has expired: %v; want %s", err, helpdeskflow.EUnavailable)
	}
	if got := f.fake.Refreshes(); got != 0 {
		t.Fatalf("token requests while the lease lasted = %d, want 0", got)
	}

	f.clock.Advance(10 * time.Minute) // the lease has run out
	got, err := m.AccessToken(f.ctx, f.workspace, c.ID)
	if err != nil || got == current || !f.fake.ValidAccessToken(got) {
		t.Fatalf("after the lease ran out: %q, %v", got, err)
	}
	if n := f.fake.Refreshes(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if _, tokens, _ := f.store.ConnectionTokens(f.ctx, f.workspace, c.ID); tokens.Lease != (helpdeskflow.RefreshLease{}) {
		t.Errorf("the lease is still held after the refresh: %+v", tokens.Lease)
	}
}

// A refresher that stalled past its lease, while another process took the
// refresh over and stored new tokens, cannot overwrite them: whatever the
// provider answers the stale one (new tokens, or invalid_grant for a
// refresh token the other use rotated), it answers with the stored tokens,
// and the connection stays active.
func TestManager_StaleRefresherCannotOverwrite(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run(fmt.Sprintf("rotate=%v", rotate), func(t *testing.T) {
			f := newFixture(t)
			f.fake.RotateRefreshTokens(rotate)
			c := f.connect()
			f.clock.Advance(58 * time.Minute)
			f.fake.ExpiresIn(3 * time.Hour)

			releaseStale := f.fake.HoldNext()
			defer releaseStale()
			stale := f.accessTokenAsync(f.m, c.ID)
			f.waitHeld(1)
			// The stale one's lease (twice the default RefreshTimeout) runs
			// out; another process takes the refresh over.
			f.clock.Advance(time.Minute)
			newer, err := f.manager(nil).AccessToken(f.ctx, f.workspace, c.ID)
			if err != nil || !f.fake.ValidAccessToken(newer) {
				t.Fatalf("the process that took over: %q, %v", newer, err)
			}

			releaseStale()
			r := f.receive(stale)
			if r.err != nil || r.token != newer {
				t.Errorf("the stale refresher answered %q, %v; want the stored %q", r.token, r.err, newer)
			}
			requests := f.fake.Requests()
			if last := requests[len(requests)-1]; (last.Error == "invalid_grant") != rotate {
				t.Errorf("the stale request was answered %d %q", last.Status, last.Error)
			}
			if got, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); err != nil || got != newer {
				t.Errorf("stored token %q, %v; want %q", got, err, newer)
			}
			got, _ := f.store.Connection(f.ctx, f.workspace, c.ID)
			if got.Status != helpdeskflow.ConnectionActive || f.events(helpdeskflow.EventIntegrationTokenExpired) != 0 {
				t.Errorf("after the stale refresh: %+v", got)
			}
			// The stored refresh token is the one the provider honours.
			f.clock.Advance(4 * time.Hour)
			if tk, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); err != nil || !f.fake.ValidAccessToken(tk) {
				t.Errorf("refreshing again: %v", err)
			}
		})
	}
}

// A refresh refused with invalid_grant after another process took its
// lease over does not expire the connection (the other process may have
// used, and rotated, the same refresh token): it waits for the other
// process's outcome and answers with it.
func TestManager_RefusedAfterTakeOverWaits(t *testing.T) {
	f := newFixture(t)
	f.fake.RotateRefreshTokens(true)
	c := f.connect()
	f.clock.Advance(58 * time.Minute)
	f.fake.ExpiresIn(3 * time.Hour)
	stale, staleReads := f.watchedManager(nil)

	releaseStale := f.fake.HoldNext()
	defer releaseStale()
	staleResult := f.accessTokenAsync(stale, c.ID)
	f.waitHeld(1)
	f.clock.Advance(time.Minute) // the stale one's lease runs out
	releaseNewer := f.fake.HoldNext()
	defer releaseNewer()
	newerResult := f.accessTokenAsync(f.m, c.ID)
	f.waitHeld(2)

	f.fake.FailNext(400, "invalid_grant")
	for len(staleReads) > 0 {
		<-staleReads
	}
	releaseStale()
	// Refused, the stale one reads the connection again, sees the newer
	// one's lease, and waits for it.
	select {
	case tokens := <-staleReads:
		if tokens.Lease == (helpdeskflow.RefreshLease{}) {
			t.Errorf("the stale refresher read the connection without a lease: %+v", tokens.Lease)
		}
	case r := <-staleResult:
		t.Fatalf("the stale refresher answered %q, %v before the process holding the lease did", r.token, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("the stale refresher neither answered nor read the connection again")
	}
	if got, _ := f.store.Connection(f.ctx, f.workspace, c.ID); got.Status != helpdeskflow.ConnectionActive {
		t.Fatalf("a refresh refused after its lease was taken over made the connection %s", got.Status)
	}

	releaseNewer()
	a, b := f.receive(staleResult), f.receive(newerResult)
	if a.err != nil || b.err != nil || a.token != b.token || !f.fake.ValidAccessToken(a.token) {
		t.Errorf("stale %q, %v; newer %q, %v; want the newer one's token for both", a.token, a.err, b.token, b.err)
	}
	if f.events(helpdeskflow.EventIntegrationTokenExpired) != 0 {
		t.Error("integration.token_expired was recorded")
	}
}

// RefreshToken refreshes a token that has not expired (a provider refused
// it), once; an invalid_grant answer expires the connection.
func TestManager_RefreshTokenForced(t *testing.T) {
	f := newFixture(t)
	c := f.connect()
	current, err := f.m.AccessToken(f.ctx, f.workspace, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	refreshed, err := f.m.RefreshToken(f.ctx, f.workspace, c.ID)
	if err != nil || refreshed == current || !f.fake.ValidAccessToken(refreshed) {
		t.Fatalf("RefreshToken = %q, %v (before: %q)", refreshed, err, current)
	}
	if got, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); err != nil || got != refreshed {
		t.Errorf("AccessToken after RefreshToken = %q, %v; want %q", got, err, refreshed)
	}
	if got := f.fake.Refreshes(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	f.fake.FailNext(400, "invalid_grant")
	if _, err := f.m.RefreshToken(f.ctx, f.workspace, c.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.EConflict {
		t.Fatalf("RefreshToken refused: %v", err)
	}
	got, _ := f.store.Connection(f.ctx, f.workspace, c.ID)
	if got.Status != helpdeskflow.ConnectionTokenExpired || f.events(helpdeskflow.EventIntegrationTokenExpired) != 1 {
		t.Errorf("after invalid_grant: %+v", got)
	}
}

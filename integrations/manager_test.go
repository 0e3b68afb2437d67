package integrations_test

import (
	"bytes"
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/integrations/integrationstest"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

type fixture struct {
	t         *testing.T
	ctx       context.Context
	store     testenv.Rooms
	db        *pg.DB
	keys      *secretbox.Keyring
	fake      *oauthtest.Server
	clock     *testenv.Clock
	m         *integrations.Manager
	workspace uuid.UUID
}

func newFixture(t *testing.T) *fixture {
	store := testenv.NewRooms(t)
	db := store.DB
	fake := oauthtest.NewServer()
	t.Cleanup(fake.Close)
	spec, _ := secretbox.NewKey("t1")
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), store: store, db: db, keys: keys, fake: fake, clock: testenv.NewClock(time.Now().UTC())}
	f.m = f.manager(nil)
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}
	if f.workspace, _, err = testenv.NewCommands(store.EventStore, testenv.CommandOptions{}).Access.CreateWorkspace(f.ctx, md, "oauth"); err != nil {
		t.Fatal(err)
	}
	return f
}

// manager returns a Manager on the fixture's store, fake provider and
// clock, as another process would run one, with change applied to its
// Config (when not nil).
func (f *fixture) manager(change func(*integrations.Config)) *integrations.Manager {
	f.t.Helper()
	cfg := integrations.Config{Store: integrations.AdaptStore(f.store.ConnectionStore), Sealer: f.keys,
		Providers: map[string]oauth.Provider{"google": f.fake.Provider("google")}, StateKey: bytes.Repeat([]byte("k"), 32), Now: f.clock.Now}
	if change != nil {
		change(&cfg)
	}
	m, err := integrations.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// connect runs the whole flow: connect, consent at the fake, callback.
func (f *fixture) connect() helpdeskflow.Connection {
	f.t.Helper()
	c := integrationstest.Connect(f.t, f.m, f.fake, f.workspace, "google", "")
	if c.Status != helpdeskflow.ConnectionActive {
		f.t.Fatalf("connected: %+v", c)
	}
	return c
}

func (f *fixture) events(eventType string) int {
	f.t.Helper()
	events, err := f.store.Load(f.ctx, f.workspace, f.workspace)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Type == eventType {
			n++
		}
	}
	return n
}

func TestManager_ConnectAndRefresh(t *testing.T) {
	f := newFixture(t)
	f.fake.ExpiresIn(time.Hour)
	f.fake.RotateRefreshTokens(true)
	c := f.connect()
	if c.Status != helpdeskflow.ConnectionActive || c.TokenExpiry == nil || f.events(helpdeskflow.EventIntegrationConnected) != 1 {
		t.Fatalf("connected: %+v", c)
	}
	// Tokens are sealed at rest.
	var access, refresh []byte
	if err := f.db.Pool().QueryRow(f.ctx, `SELECT access_token, refresh_token FROM integration_connections WHERE id = $1`, c.ID).Scan(&access, &refresh); err != nil {
		t.Fatal(err)
	}
	token, err := f.m.AccessToken(f.ctx, f.workspace, c.ID)
	if err != nil || token == "" || bytes.Contains(access, []byte(token)) || refresh == nil {
		t.Fatalf("token %q err %v; stored access is sealed: %v", token, err, !bytes.Contains(access, []byte(token)))
	}
	if f.fake.Refreshes() != 0 {
		t.Errorf("a fresh token was refreshed")
	}
	// Near expiry, eight concurrent callers share one refresh (the fake
	// sets expiry from its own clock, so new tokens last past the test's).
	f.clock.Advance(58 * time.Minute)
	f.fake.ExpiresIn(3 * time.Hour)
	var wg sync.WaitGroup
	tokens := make([]string, 8)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tokens[i], _ = f.m.AccessToken(f.ctx, f.workspace, c.ID)
		}()
	}
	wg.Wait()
	if f.fake.Refreshes() != 1 {
		t.Errorf("want one refresh for concurrent callers, got %d", f.fake.Refreshes())
	}
	for _, tk := range tokens {
		if tk != tokens[0] || tk == token || !f.fake.ValidAccessToken(tk) {
			t.Fatalf("tokens after refresh: %v", tokens)
		}
	}
	// The rotated refresh token was stored: the next refresh works.
	f.clock.Advance(4 * time.Hour)
	if tk, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); err != nil || !f.fake.ValidAccessToken(tk) {
		t.Fatalf("second refresh: %v", err)
	}
}

func TestManager_TemporaryAndInvalidGrant(t *testing.T) {
	f := newFixture(t)
	f.fake.ExpiresIn(time.Minute)
	c := f.connect()
	f.clock.Advance(2 * time.Minute)

	f.fake.FailNext(500, "server_error")
	if _, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnavailable {
		t.Fatalf("a 500: %v", err)
	}
	got, _ := f.store.Connection(f.ctx, f.workspace, c.ID)
	if got.Status != helpdeskflow.ConnectionActive || got.LastErrorClass != "temporary" || got.NextRetryAt == nil {
		t.Errorf("after a 500: %+v", got)
	}
	if tk, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); err != nil || tk == "" {
		t.Fatalf("retry after a 500: %v", err)
	}

	// Revoked: token_expired, recorded once, never retried.
	f.fake.FailNext(400, "invalid_grant")
	f.clock.Advance(2 * time.Minute)
	if _, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.EConflict {
		t.Fatalf("invalid_grant: %v", err)
	}
	refreshes := f.fake.Refreshes()
	for range 3 {
		if _, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.EConflict {
			t.Fatalf("token_expired: %v", err)
		}
	}
	if f.fake.Refreshes() != refreshes {
		t.Errorf("a token_expired connection was refreshed again")
	}
	got, _ = f.store.Connection(f.ctx, f.workspace, c.ID)
	if got.Status != helpdeskflow.ConnectionTokenExpired || f.events(helpdeskflow.EventIntegrationTokenExpired) != 1 || integrations.Explain(got) == "" {
		t.Errorf("after invalid_grant: %+v, %d events", got, f.events(helpdeskflow.EventIntegrationTokenExpired))
	}
	// Reconnecting keeps the connection (and so its sync state).
	again := f.connect()
	if again.ID != c.ID || again.Status != helpdeskflow.ConnectionActive {
		t.Errorf("reconnected: %+v", again)
	}
	if _, err := f.m.AccessToken(f.ctx, f.workspace, c.ID); err != nil {
		t.Errorf("after reconnecting: %v", err)
	}
}

func TestManager_CallbackRefusals(t *testing.T) {
	f := newFixture(t)
	_, authURL, err := f.m.Connect(f.ctx, f.workspace, "google", "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	state := u.Query().Get("state")
	if _, err := f.m.Callback(f.ctx, "google", state+"x", "code", ""); err == nil {
		t.Error("a tampered state was accepted")
	}
	if _, err := f.m.Callback(f.ctx, "slack", state, "code", ""); err == nil {
		t.Error("a state for another provider was accepted")
	}
	if _, err := f.m.Callback(f.ctx, "google", state, "", "access_denied"); helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
		t.Errorf("declined: %v", err)
	}
	if _, err := f.m.Callback(f.ctx, "google", state, "not-a-code", ""); err == nil {
		t.Error("a bad code was accepted")
	}
	f.clock.Advance(11 * time.Minute)
	code, _ := f.fake.Authorize(authURL)
	if _, err := f.m.Callback(f.ctx, "google", state, code, ""); err == nil {
		t.Error("an expired state was accepted")
	}
	if _, _, err := f.m.Connect(f.ctx, f.workspace, "myspace", ""); helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		t.Errorf("unknown provider: %v", err)
	}
}

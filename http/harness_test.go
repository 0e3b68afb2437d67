package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup/profilelookuptest"
	"github.com/helpdeskflow/helpdeskflow/clients/slack"
	"github.com/helpdeskflow/helpdeskflow/clients/slack/slacktest"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/http"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// recordingLog is a RequestLog that keeps what it is given.
// webhookReplays are the harness's webhook replays: started by the
// outbound command, their progress read from the queues.
type webhookReplays struct {
	*outbound.Replays
	*testenv.QueueStore
}

type recordingLog struct {
	mu      sync.Mutex
	entries []helpdeskflow.APIRequest
}

func (l *recordingLog) Log(r helpdeskflow.APIRequest) {
	l.mu.Lock()
	l.entries = append(l.entries, r)
	l.mu.Unlock()
}

func (l *recordingLog) last() helpdeskflow.APIRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entries[len(l.entries)-1]
}

// harness is the API on a real Postgres database (event store, access
// cache with its listener) and a real ClickHouse database, with a fake
// rate-limit clock, serving over loopback TCP.
type harness struct {
	t         testing.TB
	url       string
	server    *http.Server
	cfg       http.Config
	store     testenv.Rooms
	db        *pg.DB
	service   *testenv.Commands
	clock     *testenv.Clock
	log       *recordingLog
	reg       *prometheus.Registry
	workspace uuid.UUID
	adminKey  string
	slack     *slacktest.Server // the fake Slack API; its valid token is "xoxb-test-token"
	keys      *secretbox.Keyring
	oauth     *oauthtest.Server         // the fake OAuth provider behind "google" and "stripe"
	shops     *profilelookuptest.Server // the fake Shopify and Stripe APIs
	// connections is the integrations manager behind the API.
	connections *integrations.Manager
}

func newHarness(t testing.TB, trustedProxies ...netip.Prefix) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store := testenv.NewRooms(t)
	db := store.DB
	accessCache := access.NewCache(store.AccessStore, access.CacheConfig{HeartbeatInterval: 100 * time.Millisecond, TrustWindow: 2 * time.Second})
	done := make(chan struct{})
	go func() { accessCache.Run(ctx); close(done) }() //nolint:errcheck // returns nil when ctx ends
	t.Cleanup(func() { cancel(); <-done })

	chName := testenv.RandomName("t_")
	ch, err := projections.OpenClickHouse(ctx, testenv.ClickHouseAddr(), chName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch.Exec(context.Background(), "DROP DATABASE IF EXISTS "+chName) //nolint:errcheck // best effort
		ch.Close()
	})
	if err := projections.Migrate(ctx, ch); err != nil {
		t.Fatal(err)
	}

	clock := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	limiter, err := ratelimit.New(ratelimit.Config{Now: clock.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := rules.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	keySpec, err := secretbox.NewKey("test")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secretbox.ParseKeyring(keySpec)
	if err != nil {
		t.Fatal(err)
	}
	fakeSlack := slacktest.NewServer()
	t.Cleanup(fakeSlack.Close)
	fakeSlack.SetToken("xoxb-test-token")
	service := testenv.NewCommands(store.EventStore, testenv.CommandOptions{Metrics: metrics, Sealer: keys, AllowLoopback: true,
		Slack: slack.New(fakeSlack.URL(), nil)})
	fakeOAuth := oauthtest.NewServer()
	t.Cleanup(fakeOAuth.Close)
	connections, err := integrations.New(integrations.Config{Store: integrations.AdaptStore(store.ConnectionStore), Sealer: keys,
		Providers: map[string]oauth.Provider{"google": fakeOAuth.Provider("google"), "stripe": fakeOAuth.Provider("stripe")},
		StateKey:  []byte("harness-state-key-32-bytes-long!"), IMAPOptions: []imapmail.Option{imapmailtest.AllowLoopback}})
	if err != nil {
		t.Fatal(err)
	}
	shops := profilelookuptest.NewServer()
	t.Cleanup(shops.Close)
	linker, err := linkedprofiles.New(linkedprofiles.Config{Connections: store, Tokens: connections, Customers: service.Tickets,
		Lookup: profilelookup.New(nil, profilelookup.WithShopifyBaseURL(shops.ShopifyBaseURL()), profilelookup.WithStripeBaseURL(shops.StripeBaseURL()))})
	if err != nil {
		t.Fatal(err)
	}
	log := &recordingLog{}
	cfg := http.Config{
		Tickets: service.Tickets, Customers: service.Tickets, CustomerLister: projections.NewCustomerReader(ch), Lister: projections.NewTicketReader(ch), Events: store, Auth: accessCache,
		Admin: service.Access, AdminReader: store, Automations: service.Rules, Simulator: service.Tickets, SLAPolicies: service.Rules, Webhooks: service.Outbound, WebhookReader: store, Slack: service.Outbound, SlackReader: store, Connections: connections, ConnectionReader: store,
		LinkedProfiles: linker, Limiter: limiter, RequestLog: log,
		WebhookReplays: webhookReplays{outbound.NewReplays(store, nil), store.QueueStore},
		TrustedProxies: trustedProxies, Registerer: reg, Gatherer: reg,
		Idempotency: idempotency.New(store.DB),
		// No projector feeds ch: the read model stays where it is (see
		// withReadModels for one that moves).
		PositionSealer: keys, ReadPositions: projections.NewPositionWatcher(projections.NewPositionReader(ch), projections.PositionWatcherConfig{PollInterval: 10 * time.Millisecond}),
	}
	server, err := http.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	h := &harness{t: t, url: srv.URL, server: server, cfg: cfg, store: store, db: db, service: service, clock: clock, log: log, reg: reg,
		slack: fakeSlack, keys: keys, oauth: fakeOAuth, shops: shops, connections: connections}
	h.workspace, h.adminKey = h.newWorkspace()
	return h
}

// newWorkspace creates a workspace and returns it with its admin key.
func (h *harness) newWorkspace() (uuid.UUID, string) {
	h.t.Helper()
	id, key, err := h.service.Access.CreateWorkspace(context.Background(), helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return id, key.Secret
}

// response is an answer decoded for assertions.
type response struct {
	status int
	header nethttp.Header
	body   map[string]any
	raw    string
}

func (r response) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// do sends a request with key as Bearer (none when empty) and extra
// headers as name, value pairs.
func (h *harness) do(method, path, key string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := nethttp.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			h.t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
		}
	}
	return out
}

// want fails the test unless r has status (and, for errors, code).
func (h *harness) want(r response, status int, code string) {
	h.t.Helper()
	if r.status != status || r.errorCode() != code {
		h.t.Fatalf("got %d %q, want %d %q: %s", r.status, r.errorCode(), status, code, r.raw)
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// details returns an error answer's details as field → problem, failing on
// a field named twice.
func details(t *testing.T, r response) map[string]string {
	t.Helper()
	e, _ := r.body["error"].(map[string]any)
	list, _ := e["details"].([]any)
	out := map[string]string{}
	for _, d := range list {
		d := d.(map[string]any)
		field, problem := d["field"].(string), d["problem"].(string)
		if _, twice := out[field]; twice {
			t.Errorf("field %s is named twice: %s", field, r.raw)
		}
		out[field] = problem
	}
	return out
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/client"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	plt "github.com/helpdeskflow/helpdeskflow/clients/profilelookup/profilelookuptest"
	"github.com/helpdeskflow/helpdeskflow/clients/slack/slacktest"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// TestDev_SlowPartnersDelayNobodyElse: one workspace's Shopify shop never
// answers and its Slack answers each post after 9 seconds; while those
// calls are outstanding, another workspace's events are handled: its
// webhook is delivered and its ticket reaches ClickHouse. The dispatcher
// only queues the slow calls; the job worker runs them, a few per
// connection at a time.
func TestDev_SlowPartnersDelayNobodyElse(t *testing.T) {
	provider := oauthtest.NewServer()
	t.Cleanup(provider.Close)
	shops := plt.NewServer()
	t.Cleanup(shops.Close)
	slow := slacktest.NewServer()
	t.Cleanup(slow.Close)
	keys, err := secretbox.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HDF_OAUTH_SHOPIFY_CLIENT_ID", oauthtest.ClientID)
	t.Setenv("HDF_OAUTH_SHOPIFY_CLIENT_SECRET", oauthtest.ClientSecret)
	t.Setenv("HDF_OAUTH_SHOPIFY_AUTH_URL", provider.AuthURL()+"?shop="+oauth.ShopPlaceholder)
	t.Setenv("HDF_OAUTH_SHOPIFY_TOKEN_URL", provider.TokenURL()+"?shop="+oauth.ShopPlaceholder)
	cfg := testConfig(t)
	cfg.SecretKeys, cfg.PublicURL, cfg.SlackAPIURL = keys, "http://127.0.0.1:8080", slow.URL()
	cfg.ShopifyAPIURL = shops.URL() + "/shops/{shop}"
	dev := startDev(t, cfg)

	// Workspace A (the demo workspace): Slack and a Shopify shop.
	if status, _, body := call(t, "PUT", dev.url+"/v1/integrations/slack", dev.key,
		[]byte(`{"bot_token": "xoxb-1-slow", "channels": {"new_ticket": "#new"}}`)); status != 200 {
		t.Fatalf("connect Slack: %d %v", status, body)
	}
	status, _, started := call(t, "POST", dev.url+"/v1/integrations/shopify/connect", dev.key, []byte(`{"shop": "acme"}`))
	if status != 201 {
		t.Fatalf("connect Shopify: %d %v", status, started)
	}
	authURL := started["authorization_url"].(string)
	code, err := provider.Authorize(authURL)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	status, _, shop := call(t, "GET", dev.url+"/v1/integrations/shopify/callback?state="+url.QueryEscape(u.Query().Get("state"))+"&code="+url.QueryEscape(code), "", nil)
	if status != 200 || shop["status"] != "active" {
		t.Fatalf("Shopify callback: %d %v", status, shop)
	}
	shops.Hang(plt.Shopify, true)
	slow.SetDelay(9 * time.Second)

	// Workspace B: a webhook.
	keyB := newWorkspaceKey(t, cfg.PostgresURL, "B")
	var mu sync.Mutex
	delivered := map[string]bool{} // event types delivered to B
	receiver := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // only the headers matter
		mu.Lock()
		delivered[r.Header.Get("X-HDF-Event-Type")] = true
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	ctx := context.Background()
	clientA := newAPIClient(t, dev)
	clientB, err := client.New(dev.url, keyB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clientB.CreateWebhook(ctx, client.WebhookCreate{URL: receiver.URL, EventTypes: []string{"ticket.created"}}); err != nil {
		t.Fatalf("create B's webhook: %v", err)
	}

	// A's tickets: each new customer is looked up in the hung shop, each
	// ticket is posted to the slow Slack; more of them than the
	// per-connection slots, so calls stay outstanding for a while.
	for i := range 6 {
		if _, _, err := clientA.CreateTicket(ctx, client.TicketCreate{Subject: fmt.Sprintf("order %d", i),
			Customer: client.TicketCustomer{Email: fmt.Sprintf("a%d@example.com", i)}, Message: client.TicketMessage{Body: "hi"}}); err != nil {
			t.Fatalf("A's ticket: %v", err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if shops.InFlight() == 0 {
			return errors.New("no Shopify lookup outstanding yet")
		}
		return nil
	})

	// B's ticket is delivered and projected while A's calls hang.
	if _, _, err := clientB.CreateTicket(ctx, client.TicketCreate{Subject: "meanwhile in B", Customer: client.TicketCustomer{Email: "b@example.com"},
		Message: client.TicketMessage{Body: "hi"}}); err != nil {
		t.Fatalf("B's ticket: %v", err)
	}
	outstanding := func(what string) {
		t.Helper()
		if shops.InFlight() == 0 || slow.InFlight() == 0 {
			t.Fatalf("%s only after A's calls ended (%d Shopify, %d Slack outstanding): it waited for them", what, shops.InFlight(), slow.InFlight())
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !delivered["ticket.created"] {
			return errors.New("B's webhook has not been delivered")
		}
		return nil
	})
	outstanding("B's webhook was delivered")
	testenv.Eventually(t, 60*time.Second, func() error {
		var listed []string
		for tk, err := range clientB.ListTickets(ctx, client.TicketFilter{}) {
			if err != nil {
				return err
			}
			listed = append(listed, tk.Subject)
		}
		if len(listed) != 1 {
			return fmt.Errorf("B's list: %v", listed)
		}
		return nil
	})
	outstanding("B's ticket reached ClickHouse")

	// A sees its queues.
	status, _, slackA := call(t, "GET", dev.url+"/v1/integrations/slack", dev.key, nil)
	if q, _ := slackA["queue"].(map[string]any); status != 200 || q == nil || q["pending"].(float64) < 1 || q["oldest_pending_at"] == nil {
		t.Errorf("A's Slack: %d %v", status, slackA)
	}
	status, _, shopA := call(t, "GET", dev.url+"/v1/integrations/"+shop["id"].(string), dev.key, nil)
	if q, _ := shopA["queue"].(map[string]any); status != 200 || q == nil || q["pending"] != float64(6) {
		t.Errorf("A's shop: %d %v", status, shopA)
	}
	resp, err := nethttp.Get(dev.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`helpdeskflow_integration_jobs_in_flight{kind="profile_lookup"}`, `helpdeskflow_integration_jobs_pending{kind="slack_notification"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// newWorkspaceKey creates a workspace in the database at postgresURL and
// returns its admin key.
func newWorkspaceKey(t *testing.T, postgresURL, name string) string {
	t.Helper()
	ctx := context.Background()
	pool, err := pg.Connect(ctx, postgresURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := eventstore.New(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := testenv.NewCommands(store, testenv.CommandOptions{}).Access.CreateWorkspace(ctx, systemMetadata(), name)
	if err != nil {
		t.Fatal(err)
	}
	return key.Secret
}

package linkedprofiles_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup/profilelookuptest"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/dispatch/handlers"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/integrations/integrationstest"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

type fixture struct {
	t         *testing.T
	ctx       context.Context
	store     testenv.Rooms
	svc       *testenv.Commands
	oauth     *oauthtest.Server
	shops     *profilelookuptest.Server
	m         *integrations.Manager
	linker    *linkedprofiles.Linker
	workspace uuid.UUID
}

var md = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: "k"}, Channel: helpdeskflow.ChannelAPI}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store := testenv.NewRooms(t)
	fake := oauthtest.NewServer()
	t.Cleanup(fake.Close)
	shops := profilelookuptest.NewServer()
	t.Cleanup(shops.Close)
	spec, _ := secretbox.NewKey("t1")
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	shopify := fake.Provider(oauth.Shopify)
	shopify.AuthURL += "?shop=" + oauth.ShopPlaceholder
	shopify.TokenURL += "?shop=" + oauth.ShopPlaceholder
	m, err := integrations.New(integrations.Config{Store: integrations.AdaptStore(store.ConnectionStore), Sealer: keys,
		Providers: map[string]oauth.Provider{oauth.Stripe: fake.Provider(oauth.Stripe), oauth.Shopify: shopify},
		StateKey:  bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	svc := testenv.NewCommands(store.EventStore, testenv.CommandOptions{})
	ws, _, err := svc.Access.CreateWorkspace(context.Background(), md, "profiles")
	if err != nil {
		t.Fatal(err)
	}
	lookup := profilelookup.New(nil, profilelookup.WithShopifyBaseURL(shops.ShopifyBaseURL()), profilelookup.WithStripeBaseURL(shops.StripeBaseURL()))
	linker, err := linkedprofiles.New(linkedprofiles.Config{Connections: store, Tokens: m, Lookup: lookup, Customers: svc.Tickets,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: context.Background(), store: store, svc: svc, oauth: fake, shops: shops, m: m, linker: linker, workspace: ws}
}

// connect connects provider (shop for Shopify) through the fake OAuth
// server and lets the fake API accept the connection's token.
func (f *fixture) connect(provider, shop, account string) helpdeskflow.Connection {
	f.t.Helper()
	if provider == oauth.Stripe {
		f.oauth.SetExtra(map[string]any{"stripe_user_id": account})
	}
	c := integrationstest.Connect(f.t, f.m, f.oauth, f.workspace, provider, shop)
	token, err := f.m.AccessToken(f.ctx, f.workspace, c.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	f.shops.SetToken(provider, account, token)
	return c
}

func (f *fixture) customer(email string) helpdeskflow.Customer {
	f.t.Helper()
	c, _, err := f.svc.Tickets.UpsertCustomer(f.ctx, f.workspace, md, tickets.UpsertCustomer{Email: email})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func TestRefresh_LinksShopifyAndStripeProfiles(t *testing.T) {
	f := newFixture(t)
	customer := f.customer("Ann@Example.com")
	if _, _, err := f.linker.Refresh(f.ctx, f.workspace, customer.ID); helpdeskflow.ErrorCode(err) != helpdeskflow.EConflict {
		t.Fatalf("refresh with nothing connected: %v", err)
	}
	f.connect(oauth.Shopify, "acme", "acme")
	f.connect(oauth.Stripe, "", "acct_1ACME")
	f.shops.AddShopifyCustomer("acme", profilelookuptest.ShopifyCustomer{ID: 42, Email: "ann@example.com", OrdersCount: 7, TotalSpent: "310.50", Tags: "vip, wholesale"})
	f.shops.AddStripeCustomer("acct_1ACME", profilelookuptest.StripeCustomer{ID: "cus_ann", Email: "ANN@example.com", Livemode: true},
		profilelookuptest.StripeSubscription{Status: "active", PriceNickname: "Pro"})

	got, outcomes, err := f.linker.Refresh(f.ctx, f.workspace, customer.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != 2 || outcomes[0].Status != linkedprofiles.Linked || outcomes[1].Status != linkedprofiles.Linked {
		t.Fatalf("outcomes: %+v", outcomes)
	}
	profiles := map[string]helpdeskflow.LinkedProfile{}
	for _, p := range got.LinkedProfiles {
		profiles[p.Provider] = p
	}
	if p := profiles["shopify"]; p.ExternalID != "42" || p.Data["orders_count"] != float64(7) || p.Data["total_spent"] != 310.5 {
		t.Fatalf("shopify profile: %+v", p)
	}
	if p := profiles["stripe"]; p.ExternalID != "cus_ann" || p.Data["subscription_status"] != "active" || p.Data["plan"] != "Pro" {
		t.Fatalf("stripe profile: %+v", p)
	}
	// Automation conditions see the data.
	if !automation.Matches(automation.Conditions{All: []automation.Condition{
		{Field: "customer.linked_profiles.shopify.data.orders_count", Operator: "greater_than", Value: 5},
		{Field: "customer.linked_profiles.stripe.data.subscription_status", Operator: "is", Value: "active"},
	}}, helpdeskflow.Ticket{}, got) {
		t.Fatalf("conditions on linked profiles do not match %+v", got.LinkedProfiles)
	}
	// Nothing changed at the providers: a refresh records nothing new.
	before, _ := f.store.Load(f.ctx, f.workspace, customer.ID)
	if _, _, err := f.linker.Refresh(f.ctx, f.workspace, customer.ID); err != nil {
		t.Fatal(err)
	}
	after, _ := f.store.Load(f.ctx, f.workspace, customer.ID)
	if len(after) != len(before) {
		t.Fatalf("an unchanged refresh appended %d events", len(after)-len(before))
	}
}

func TestRefresh_FailuresAreNamed(t *testing.T) {
	f := newFixture(t)
	customer := f.customer("bob@example.com")
	shop := f.connect(oauth.Shopify, "acme", "acme")
	stripe := f.connect(oauth.Stripe, "", "acct_1ACME")

	// Not found, and a 500 at Stripe.
	f.shops.FailNext(500)
	_, outcomes, err := f.linker.Refresh(f.ctx, f.workspace, customer.ID)
	if err != nil || len(outcomes) != 2 {
		t.Fatalf("%+v, %v", outcomes, err)
	}
	failed := 0
	for _, o := range outcomes {
		switch o.Status {
		case linkedprofiles.NotFound:
		case linkedprofiles.Failed:
			failed++
			if o.ErrorClass != profilelookup.ClassTemporary || o.Error == "" {
				t.Errorf("a 500: %+v", o)
			}
		default:
			t.Errorf("outcome %+v", o)
		}
	}
	if failed != 1 {
		t.Fatalf("outcomes: %+v", outcomes)
	}

	// A revoked token marks the connection token_expired; the other
	// connection goes on.
	token, _ := f.m.AccessToken(f.ctx, f.workspace, shop.ID)
	f.shops.RevokeToken(token)
	_, outcomes, err = f.linker.Refresh(f.ctx, f.workspace, customer.ID)
	if err != nil || outcomes[0].ErrorClass != "token_expired" || outcomes[1].Status != linkedprofiles.NotFound {
		t.Fatalf("after revoking Shopify's token: %+v, %v", outcomes, err)
	}
	if c, _ := f.store.Connection(f.ctx, f.workspace, shop.ID); c.Status != helpdeskflow.ConnectionTokenExpired {
		t.Fatalf("shopify connection: %+v", c)
	}
	// Only the active connection is asked from now on.
	_, outcomes, _ = f.linker.Refresh(f.ctx, f.workspace, customer.ID)
	if len(outcomes) != 1 || outcomes[0].ConnectionID != stripe.ID {
		t.Fatalf("outcomes after expiry: %+v", outcomes)
	}
}

// claim leases the fixture's due jobs, as the job worker would.
func (f *fixture) claim() []helpdeskflow.IntegrationJob {
	f.t.Helper()
	jobs, err := f.store.ClaimJobs(f.ctx, time.Now().Add(time.Hour), 100, 10, nil, time.Minute)
	if err != nil {
		f.t.Fatal(err)
	}
	return jobs
}

func TestHandler_QueuesLookupsThatRunJobRuns(t *testing.T) {
	f := newFixture(t)
	shop := f.connect(oauth.Shopify, "acme", "acme")
	stripe := f.connect(oauth.Stripe, "", "acct_1ACME")
	f.shops.AddStripeCustomer("acct_1ACME", profilelookuptest.StripeCustomer{ID: "cus_cat", Email: "cat@example.com"})
	customer := f.customer("cat@example.com")
	events, err := f.store.Load(f.ctx, f.workspace, customer.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := &handlers.LinkedProfiles{Linker: f.linker, Jobs: f.store}
	calls := f.shops.Calls("")
	for range 2 { // a redelivery queues nothing more
		if err := h.Handle(f.ctx, events[0]); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.shops.Calls(""); n != calls {
		t.Fatalf("the handler called the providers %d times; it must only queue", n-calls)
	}
	jobs := f.claim()
	if len(jobs) != 2 {
		t.Fatalf("jobs: %+v", jobs)
	}
	byConn := map[uuid.UUID]helpdeskflow.IntegrationJob{}
	for _, j := range jobs {
		if j.Kind != helpdeskflow.JobProfileLookup || j.EventID != events[0].ID || j.WorkspaceID != f.workspace {
			t.Errorf("job %+v", j)
		}
		byConn[j.ConnectionID] = j
	}

	// A 503 is a temporary failure, the next run links the profile.
	f.shops.FailNext(503)
	if r := f.linker.RunJob(f.ctx, byConn[stripe.ID]); !r.Retry || r.ErrorClass != profilelookup.ClassTemporary || r.Err == nil {
		t.Fatalf("a 503: %+v", r)
	}
	f.shops.RateLimitNext(1, 3*time.Second)
	if r := f.linker.RunJob(f.ctx, byConn[stripe.ID]); !r.Retry || r.ErrorClass != profilelookup.ClassRateLimited || r.RetryAfter != 3*time.Second {
		t.Fatalf("a 429: %+v", r)
	}
	if r := f.linker.RunJob(f.ctx, byConn[stripe.ID]); r.Err != nil || r.Outcome != linkedprofiles.Linked {
		t.Fatalf("stripe: %+v", r)
	}
	if r := f.linker.RunJob(f.ctx, byConn[shop.ID]); r.Err != nil || r.Outcome != linkedprofiles.NotFound {
		t.Fatalf("shopify: %+v", r)
	}
	got, _ := f.svc.Tickets.GetCustomer(f.ctx, f.workspace, customer.ID)
	if len(got.LinkedProfiles) != 1 || got.LinkedProfiles[0].ExternalID != "cus_cat" {
		t.Fatalf("profiles: %+v", got.LinkedProfiles)
	}

	// A refused token fails for good and marks the connection.
	token, _ := f.m.AccessToken(f.ctx, f.workspace, shop.ID)
	f.shops.RevokeToken(token)
	if r := f.linker.RunJob(f.ctx, byConn[shop.ID]); r.Retry || r.ErrorClass != "token_expired" || r.Err == nil {
		t.Fatalf("a revoked token: %+v", r)
	}
	if c, _ := f.store.Connection(f.ctx, f.workspace, shop.ID); c.Status != helpdeskflow.ConnectionTokenExpired {
		t.Fatalf("shopify connection: %+v", c)
	}
	// A job of a connection that is no longer active is skipped.
	if r := f.linker.RunJob(f.ctx, byConn[shop.ID]); r.Err != nil || r.Outcome != linkedprofiles.Skipped {
		t.Fatalf("a job of an expired connection: %+v", r)
	}

	// Other events, and workspaces without connections, queue nothing.
	other := newFixture(t)
	c := other.customer("dan@example.com")
	evs, _ := other.store.Load(other.ctx, other.workspace, c.ID)
	if err := (&handlers.LinkedProfiles{Linker: other.linker, Jobs: other.store}).Handle(other.ctx, evs[0]); err != nil {
		t.Fatal(err)
	}
	if jobs := other.claim(); len(jobs) != 0 {
		t.Fatalf("jobs without connections: %+v", jobs)
	}
}

// TestRunJob_CustomerAtItsTotal: a profile found for a customer that has
// all the linked profiles it may have fails for good (class
// limit_exceeded), rather than being retried as if the failure could pass.
func TestRunJob_CustomerAtItsTotal(t *testing.T) {
	f := newFixture(t)
	f.connect(oauth.Stripe, "", "acct_1FULL")
	f.shops.AddStripeCustomer("acct_1FULL", profilelookuptest.StripeCustomer{ID: "cus_full", Email: "full@example.com"})
	customer := f.customer("full@example.com")
	for from := 0; from < tickets.MaxCustomerLinkedProfiles; from += tickets.MaxLinkedProfiles {
		profiles := make([]helpdeskflow.LinkedProfile, tickets.MaxLinkedProfiles)
		for i := range profiles {
			profiles[i] = helpdeskflow.LinkedProfile{Provider: "crm", ExternalID: fmt.Sprint(from + i)}
		}
		if _, err := f.svc.Tickets.UpdateCustomer(f.ctx, f.workspace, md, customer.ID, nil, tickets.UpdateCustomer{LinkedProfiles: profiles}); err != nil {
			t.Fatal(err)
		}
	}
	events, err := f.store.Load(f.ctx, f.workspace, customer.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&handlers.LinkedProfiles{Linker: f.linker, Jobs: f.store}).Handle(f.ctx, events[0]); err != nil {
		t.Fatal(err)
	}
	jobs := f.claim()
	if len(jobs) != 1 {
		t.Fatalf("jobs: %+v", jobs)
	}
	if r := f.linker.RunJob(f.ctx, jobs[0]); r.Retry || r.ErrorClass != "limit_exceeded" || r.Err == nil {
		t.Fatalf("a profile past the customer's total: %+v, want a final limit_exceeded failure", r)
	}
}

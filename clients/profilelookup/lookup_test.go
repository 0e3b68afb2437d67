package profilelookup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup"
	plt "github.com/helpdeskflow/helpdeskflow/clients/profilelookup/profilelookuptest"
)

const (
	shop        = "acme"
	shopToken   = "shpat_0123456789abcdef0123456789abcdef"
	acct        = "acct_1Fake"
	stripeToken = "sk_test_51FakeSecretValue0123456789"
	searchPath  = "/admin/api/2024-10/customers/search.json"
)

var (
	shopAcct   = profilelookup.Account{Provider: "shopify", Name: shop, AccessToken: shopToken}
	stripeAcct = profilelookup.Account{Provider: "stripe", Name: acct, AccessToken: stripeToken}
)

func setup(t *testing.T) (*plt.Server, *profilelookup.Client) {
	t.Helper()
	srv := plt.NewServer()
	t.Cleanup(srv.Close)
	srv.SetToken(plt.Shopify, shop, shopToken)
	srv.SetToken(plt.Stripe, acct, stripeToken)
	c := profilelookup.New(nil,
		profilelookup.WithShopifyBaseURL(srv.ShopifyBaseURL()),
		profilelookup.WithStripeBaseURL(srv.StripeBaseURL()))
	return srv, c
}

// roundTrip returns the profile as it reads back from the event store.
func roundTrip(t *testing.T, p helpdeskflow.LinkedProfile) helpdeskflow.LinkedProfile {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var out helpdeskflow.LinkedProfile
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLookupShopify(t *testing.T) {
	bob := plt.ShopifyCustomer{
		ID: 123, Email: "Bob@Example.com", OrdersCount: 3, TotalSpent: "150.00", Currency: "USD",
		State: "enabled", Tags: "vip, wholesale", CreatedAt: "2024-01-02T03:04:05-05:00",
		LastOrderName: "#1003", VerifiedEmail: true,
	}
	tests := []struct {
		name      string
		customers []plt.ShopifyCustomer
		email     string
		want      *helpdeskflow.LinkedProfile
	}{
		{
			name: "found", customers: []plt.ShopifyCustomer{bob}, email: "bob@example.com",
			want: &helpdeskflow.LinkedProfile{
				Provider: "shopify", ExternalID: "123", URL: "https://admin.shopify.com/store/acme/customers/123",
				Data: map[string]any{
					"orders_count": 3.0, "total_spent": 150.0, "currency": "USD", "state": "enabled",
					"tags": []any{"vip", "wholesale"}, "created_at": "2024-01-02T08:04:05Z",
					"last_order_name": "#1003", "verified_email": true,
				},
			},
		},
		{name: "not found", customers: []plt.ShopifyCustomer{bob}, email: "alice@example.com"},
		{name: "empty email", customers: []plt.ShopifyCustomer{bob}, email: "   "},
		{
			name: "email normalized", customers: []plt.ShopifyCustomer{bob}, email: "  BOB@example.COM \n",
			want: &helpdeskflow.LinkedProfile{ExternalID: "123"},
		},
		{
			name:      "plus sign kept",
			customers: []plt.ShopifyCustomer{{ID: 5, Email: "bob+vip@example.com"}, {ID: 6, Email: "bob vip@example.com"}},
			email:     "Bob+VIP@example.com",
			want:      &helpdeskflow.LinkedProfile{ExternalID: "5"},
		},
		{
			name: "several matches: most orders wins",
			customers: []plt.ShopifyCustomer{
				{ID: 1, Email: "bob@example.com", OrdersCount: 2, CreatedAt: "2024-06-01T00:00:00Z"},
				{ID: 2, Email: "BOB@example.com", OrdersCount: 7, CreatedAt: "2020-01-01T00:00:00Z"},
				{ID: 3, Email: "bob@example.com", OrdersCount: 1, CreatedAt: "2025-01-01T00:00:00Z"},
			},
			email: "bob@example.com", want: &helpdeskflow.LinkedProfile{ExternalID: "2"},
		},
		{
			name: "several matches: equal orders, most recent wins",
			customers: []plt.ShopifyCustomer{
				{ID: 9, Email: "bob@example.com", OrdersCount: 2, CreatedAt: "2024-06-01T00:00:00Z"},
				{ID: 8, Email: "bob@example.com", OrdersCount: 2, CreatedAt: "2024-06-01T10:00:00+02:00"},
				{ID: 7, Email: "bob@example.com", OrdersCount: 2, CreatedAt: "2024-06-02T00:00:00Z"},
			},
			email: "bob@example.com", want: &helpdeskflow.LinkedProfile{ExternalID: "7"},
		},
		{
			name:      "tags split and trimmed",
			customers: []plt.ShopifyCustomer{{ID: 4, Email: "t@example.com", Tags: " vip,,  Big Spender ,wholesale, "}},
			email:     "t@example.com",
			want:      &helpdeskflow.LinkedProfile{ExternalID: "4", Data: map[string]any{"tags": []any{"vip", "Big Spender", "wholesale"}}},
		},
		{
			name:      "no tags is an empty list",
			customers: []plt.ShopifyCustomer{{ID: 4, Email: "t@example.com"}},
			email:     "t@example.com",
			want:      &helpdeskflow.LinkedProfile{ExternalID: "4", Data: map[string]any{"tags": []any{}, "last_order_name": nil}},
		},
		{
			name:      "total_spent parsed",
			customers: []plt.ShopifyCustomer{{ID: 4, Email: "t@example.com", TotalSpent: "12345.67"}},
			email:     "t@example.com",
			want:      &helpdeskflow.LinkedProfile{ExternalID: "4", Data: map[string]any{"total_spent": 12345.67, "orders_count": 0.0}},
		},
		{
			name:      "unparseable total_spent left out",
			customers: []plt.ShopifyCustomer{{ID: 4, Email: "t@example.com", TotalSpent: "n/a"}},
			email:     "t@example.com",
			want:      &helpdeskflow.LinkedProfile{ExternalID: "4", Data: map[string]any{"total_spent": nil}},
		},
		{
			name:      "quote in email",
			customers: []plt.ShopifyCustomer{{ID: 11, Email: "o'brien@example.com"}, {ID: 12, Email: `"o\"b"@example.com`}},
			email:     "O'Brien@example.com",
			want:      &helpdeskflow.LinkedProfile{ExternalID: "11"},
		},
		{
			name:      "double quote in email",
			customers: []plt.ShopifyCustomer{{ID: 11, Email: "o'brien@example.com"}, {ID: 12, Email: `"o\"b"@example.com`}},
			email:     `"o\"b"@example.com`,
			want:      &helpdeskflow.LinkedProfile{ExternalID: "12"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t)
			for _, cu := range tt.customers {
				srv.AddShopifyCustomer(shop, cu)
			}
			p, ok, err := c.Lookup(context.Background(), shopAcct, tt.email)
			if err != nil {
				t.Fatal(err)
			}
			checkProfile(t, p, ok, tt.want)
			if tt.want != nil && !reflect.DeepEqual(roundTrip(t, p), p) {
				t.Errorf("profile changes in a JSON round trip: %#v", p.Data)
			}
		})
	}
}

// checkProfile compares p with want: nil want means not found; an empty
// Provider/URL in want is not checked; nil Data values mean "absent".
func checkProfile(t *testing.T, p helpdeskflow.LinkedProfile, ok bool, want *helpdeskflow.LinkedProfile) {
	t.Helper()
	if want == nil {
		if ok {
			t.Fatalf("found %+v, want none", p)
		}
		return
	}
	if !ok {
		t.Fatalf("not found, want %s", want.ExternalID)
	}
	if p.ExternalID != want.ExternalID {
		t.Fatalf("ExternalID = %q, want %q (%+v)", p.ExternalID, want.ExternalID, p)
	}
	if want.Provider != "" && p.Provider != want.Provider {
		t.Errorf("Provider = %q, want %q", p.Provider, want.Provider)
	}
	if want.URL != "" && p.URL != want.URL {
		t.Errorf("URL = %q, want %q", p.URL, want.URL)
	}
	for k, v := range want.Data {
		got, has := p.Data[k]
		if v == nil {
			if has {
				t.Errorf("Data[%q] = %#v, want absent", k, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("Data[%q] = %#v (%T), want %#v (%T)", k, got, got, v, v)
		}
	}
	if want.Provider != "" && len(p.Data) != len(want.Data) {
		t.Errorf("Data = %#v, want exactly %#v", p.Data, want.Data)
	}
}

func TestLookupStripe(t *testing.T) {
	created := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	jane := plt.StripeCustomer{
		ID: "cus_Jane", Email: "Jane@Example.com", Created: created, Currency: "usd",
		Delinquent: true, Balance: -1250, Livemode: true,
	}
	pro := plt.StripeSubscription{Status: "active", PriceID: "price_Pro", PriceNickname: "Pro"}
	type cust struct {
		c    plt.StripeCustomer
		subs []plt.StripeSubscription
	}
	at := func(day int) time.Time { return time.Date(2024, 1, day, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name      string
		customers []cust
		email     string
		want      *helpdeskflow.LinkedProfile
	}{
		{
			name: "found", customers: []cust{{jane, []plt.StripeSubscription{pro}}}, email: "jane@example.com",
			want: &helpdeskflow.LinkedProfile{
				Provider: "stripe", ExternalID: "cus_Jane", URL: "https://dashboard.stripe.com/customers/cus_Jane",
				Data: map[string]any{
					"subscription_status": "active", "plan": "Pro", "currency": "usd", "delinquent": true,
					"balance": -1250.0, "created": "2024-03-04T05:06:07Z", "livemode": true,
				},
			},
		},
		{name: "not found", customers: []cust{{c: jane}}, email: "john@example.com"},
		{
			name: "email normalized", customers: []cust{{c: jane}}, email: " JANE@EXAMPLE.COM\t",
			want: &helpdeskflow.LinkedProfile{ExternalID: "cus_Jane", Data: map[string]any{"subscription_status": "none", "plan": nil}},
		},
		{
			name:      "test mode URL",
			customers: []cust{{c: plt.StripeCustomer{ID: "cus_T", Email: "t@example.com"}}},
			email:     "t@example.com",
			want: &helpdeskflow.LinkedProfile{ExternalID: "cus_T", URL: "https://dashboard.stripe.com/test/customers/cus_T",
				Data: map[string]any{"livemode": false, "currency": nil, "delinquent": false, "balance": 0.0}},
		},
		{
			name: "best status: active over newer canceled",
			customers: []cust{{plt.StripeCustomer{ID: "cus_S", Email: "s@example.com"}, []plt.StripeSubscription{
				{Status: "canceled", PriceID: "price_Old", Created: at(9)},
				{Status: "active", PriceID: "price_Basic", Created: at(1)},
				{Status: "incomplete", PriceID: "price_X", Created: at(10)},
			}}},
			email: "s@example.com",
			want:  &helpdeskflow.LinkedProfile{ExternalID: "cus_S", Data: map[string]any{"subscription_status": "active", "plan": "price_Basic"}},
		},
		{
			name: "best status: trialing over past_due",
			customers: []cust{{plt.StripeCustomer{ID: "cus_S", Email: "s@example.com"}, []plt.StripeSubscription{
				{Status: "past_due", PriceNickname: "Team", Created: at(5)},
				{Status: "trialing", PriceNickname: "Pro", Created: at(2)},
			}}},
			email: "s@example.com",
			want:  &helpdeskflow.LinkedProfile{ExternalID: "cus_S", Data: map[string]any{"subscription_status": "trialing", "plan": "Pro"}},
		},
		{
			name: "best status: past_due over unpaid and canceled",
			customers: []cust{{plt.StripeCustomer{ID: "cus_S", Email: "s@example.com"}, []plt.StripeSubscription{
				{Status: "unpaid", Created: at(5)}, {Status: "canceled", Created: at(6)}, {Status: "past_due", PriceNickname: "Pro", Created: at(1)},
			}}},
			email: "s@example.com",
			want:  &helpdeskflow.LinkedProfile{ExternalID: "cus_S", Data: map[string]any{"subscription_status": "past_due"}},
		},
		{
			name: "only canceled (listed with status=all)",
			customers: []cust{{plt.StripeCustomer{ID: "cus_S", Email: "s@example.com"}, []plt.StripeSubscription{
				{Status: "canceled", PriceNickname: "Old", Created: at(1)}, {Status: "canceled", PriceNickname: "Newer", Created: at(3)},
			}}},
			email: "s@example.com",
			want:  &helpdeskflow.LinkedProfile{ExternalID: "cus_S", Data: map[string]any{"subscription_status": "canceled", "plan": "Newer"}},
		},
		{
			name: "several matches: the one with the better subscription",
			customers: []cust{
				{plt.StripeCustomer{ID: "cus_Old", Email: "d@example.com", Created: at(1)}, []plt.StripeSubscription{{Status: "active"}}},
				{plt.StripeCustomer{ID: "cus_New", Email: "D@example.com", Created: at(20)}, nil},
				{plt.StripeCustomer{ID: "cus_Mid", Email: "d@example.com", Created: at(10)}, []plt.StripeSubscription{{Status: "canceled"}}},
			},
			email: "d@example.com",
			want:  &helpdeskflow.LinkedProfile{ExternalID: "cus_Old", Data: map[string]any{"subscription_status": "active"}},
		},
		{
			name: "several matches: equal, most recent wins",
			customers: []cust{
				{plt.StripeCustomer{ID: "cus_A", Email: "d@example.com", Created: at(1)}, nil},
				{plt.StripeCustomer{ID: "cus_B", Email: "d@example.com", Created: at(5)}, nil},
				{plt.StripeCustomer{ID: "cus_C", Email: "d@example.com", Created: at(3)}, nil},
			},
			email: "d@example.com",
			want:  &helpdeskflow.LinkedProfile{ExternalID: "cus_B", Data: map[string]any{"subscription_status": "none"}},
		},
		{
			name:      "quote in email",
			customers: []cust{{c: plt.StripeCustomer{ID: "cus_OB", Email: "o'brien@example.com"}}, {c: plt.StripeCustomer{ID: "cus_Other", Email: "obrien@example.com"}}},
			email:     "O'Brien@Example.com",
			want:      &helpdeskflow.LinkedProfile{ExternalID: "cus_OB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t)
			for _, cu := range tt.customers {
				srv.AddStripeCustomer(acct, cu.c, cu.subs...)
			}
			p, ok, err := c.Lookup(context.Background(), stripeAcct, tt.email)
			if err != nil {
				t.Fatal(err)
			}
			checkProfile(t, p, ok, tt.want)
			if tt.want != nil && !reflect.DeepEqual(roundTrip(t, p), p) {
				t.Errorf("profile changes in a JSON round trip: %#v", p.Data)
			}
		})
	}
}

func TestStripeSearchStopsAtActive(t *testing.T) {
	srv, c := setup(t)
	for i := range 5 {
		srv.AddStripeCustomer(acct, plt.StripeCustomer{ID: fmt.Sprintf("cus_%d", i), Email: "d@example.com",
			Created: time.Unix(int64(1700000000+i), 0)}, plt.StripeSubscription{Status: "active"})
	}
	p, ok, err := c.Lookup(context.Background(), stripeAcct, "d@example.com")
	if err != nil || !ok || p.ExternalID != "cus_4" {
		t.Fatalf("Lookup = %v, %v, %v; want cus_4", p.ExternalID, ok, err)
	}
	if n := srv.Calls("/v1/subscriptions"); n != 1 {
		t.Errorf("%d subscription requests, want 1", n)
	}
}

func TestStripeQueryEscapingAndHeaders(t *testing.T) {
	srv, c := setup(t)
	srv.AddStripeCustomer(acct, plt.StripeCustomer{ID: "cus_OB", Email: "o'brien@example.com"})
	if _, ok, err := c.Lookup(context.Background(), stripeAcct, "o'brien@example.com"); err != nil || !ok {
		t.Fatalf("Lookup = %v, %v", ok, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if got, want := reqs[0].Query.Get("query"), `email:'o\'brien@example.com'`; got != want {
		t.Errorf("query = %q, want %q", got, want)
	}
	if got := reqs[1].Query; got.Get("customer") != "cus_OB" || got.Get("status") != "all" || got.Get("limit") != "10" {
		t.Errorf("subscriptions query = %v", got)
	}
	for _, r := range reqs {
		if got := r.Header.Get("Authorization"); got != "Bearer "+stripeToken {
			t.Errorf("%s: Authorization = %q", r.Path, got)
		}
		if got := r.Header.Get("Stripe-Account"); got != acct {
			t.Errorf("%s: Stripe-Account = %q, want %q", r.Path, got, acct)
		}
		if got := r.Header.Get("Stripe-Version"); got != profilelookup.DefaultStripeAPIVersion {
			t.Errorf("%s: Stripe-Version = %q", r.Path, got)
		}
	}

	// Without an acct_ name the token alone selects the account.
	noName := stripeAcct
	noName.Name = ""
	if _, ok, err := c.Lookup(context.Background(), noName, "o'brien@example.com"); err != nil || !ok {
		t.Fatalf("Lookup without account name = %v, %v", ok, err)
	}
	for _, r := range srv.Requests()[2:] {
		if got, has := r.Header["Stripe-Account"]; has {
			t.Errorf("%s: Stripe-Account = %q sent without an acct_ name", r.Path, got)
		}
	}
}

func TestShopifyQueryAndHeaders(t *testing.T) {
	srv, c := setup(t)
	srv.AddShopifyCustomer(shop, plt.ShopifyCustomer{ID: 1, Email: "o'brien@example.com"})
	if _, ok, err := c.Lookup(context.Background(), profilelookup.Account{Provider: " Shopify ", Name: "ACME.myshopify.com", AccessToken: shopToken}, "o'brien@example.com"); err != nil || !ok {
		t.Fatalf("Lookup = %v, %v", ok, err)
	}
	r := srv.Requests()[0]
	if r.Account != shop || r.Path != searchPath {
		t.Errorf("request to %s%s", r.Account, r.Path)
	}
	if got, want := r.Query.Get("query"), `email:"o'brien@example.com"`; got != want {
		t.Errorf("query = %q, want %q", got, want)
	}
	if r.Header.Get("X-Shopify-Access-Token") != shopToken || r.Header.Get("Authorization") != "" {
		t.Errorf("headers = %v", r.Header)
	}
	for _, f := range []string{"orders_count", "total_spent", "tags", "last_order_name", "verified_email"} {
		if !strings.Contains(r.Query.Get("fields"), f) {
			t.Errorf("fields = %q lacks %s", r.Query.Get("fields"), f)
		}
	}

	c2 := profilelookup.New(nil, profilelookup.WithShopifyBaseURL(srv.ShopifyBaseURL()), profilelookup.WithShopifyAPIVersion("2025-01"))
	if _, _, err := c2.Lookup(context.Background(), shopAcct, "x@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()[1].Path; got != "/admin/api/2025-01/customers/search.json" {
		t.Errorf("path = %q", got)
	}
}

func TestPagination(t *testing.T) {
	srv, c := setup(t)
	srv.SetMaxPageSize(2)
	for i := range 5 {
		srv.AddShopifyCustomer(shop, plt.ShopifyCustomer{ID: int64(100 + i), Email: "p@example.com", OrdersCount: i % 5 * (i % 5)})
		srv.AddStripeCustomer(acct, plt.StripeCustomer{ID: fmt.Sprintf("cus_%d", i), Email: "p@example.com", Created: time.Unix(int64(1700000000+i), 0)})
	}
	p, ok, err := c.Lookup(context.Background(), shopAcct, "p@example.com")
	if err != nil || !ok || p.ExternalID != "104" {
		t.Fatalf("Shopify Lookup = %q, %v, %v; want 104 (last page)", p.ExternalID, ok, err)
	}
	if n := srv.Calls(searchPath); n != 3 {
		t.Errorf("%d Shopify pages read, want 3", n)
	}
	p, ok, err = c.Lookup(context.Background(), stripeAcct, "p@example.com")
	if err != nil || !ok || p.ExternalID != "cus_4" {
		t.Fatalf("Stripe Lookup = %q, %v, %v; want cus_4 (last page)", p.ExternalID, ok, err)
	}
	if n := srv.Calls("/v1/customers/search"); n != 3 {
		t.Errorf("%d Stripe pages read, want 3", n)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		account    profilelookup.Account
		script     func(*plt.Server)
		class      string
		status     int
		retryAfter time.Duration
		step       string
		msg        string
	}{
		{name: "shopify revoked", account: shopAcct, script: func(s *plt.Server) { s.RevokeToken(shopToken) },
			class: "unauthorized", status: 401, msg: "Invalid API key or access token"},
		{name: "shopify wrong token", account: profilelookup.Account{Provider: "shopify", Name: shop, AccessToken: "shpat_wrong0000000000"},
			class: "unauthorized", status: 401},
		{name: "shopify 402 frozen", account: shopAcct, script: func(s *plt.Server) { s.FailNext(402) }, class: "not_available", status: 402, msg: "Unavailable Shop"},
		{name: "shopify 403", account: shopAcct, script: func(s *plt.Server) { s.FailNext(403) }, class: "not_available", status: 403},
		{name: "shopify 403 missing scope", account: shopAcct,
			script: func(s *plt.Server) {
				s.RespondNext(403, `{"errors":"[API] This action requires merchant approval for read_customers scope."}`)
			},
			class: "unauthorized", status: 403, msg: "read_customers"},
		{name: "shopify unknown shop", account: profilelookup.Account{Provider: "shopify", Name: "nosuchshop", AccessToken: shopToken},
			class: "not_available", status: 404},
		{name: "shopify 429 Retry-After 2.0", account: shopAcct, script: func(s *plt.Server) { s.RateLimitNext(1, 2*time.Second) },
			class: "rate_limited", status: 429, retryAfter: 2 * time.Second, msg: "Exceeded 2 calls per second"},
		{name: "shopify 429 fractional", account: shopAcct, script: func(s *plt.Server) { s.RateLimitNext(3, 1500*time.Millisecond) },
			class: "rate_limited", status: 429, retryAfter: 1500 * time.Millisecond},
		{name: "shopify 500", account: shopAcct, script: func(s *plt.Server) { s.FailNext(500) }, class: "temporary", status: 500},
		{name: "shopify 503 HTML", account: shopAcct, script: func(s *plt.Server) { s.RespondNext(503, "<html>down</html>") },
			class: "temporary", status: 503, msg: "Service Unavailable"},
		{name: "shopify garbage", account: shopAcct, script: func(s *plt.Server) { s.RespondNext(200, `{"customers":[{"id":1,`) },
			class: "bad_response", status: 200},
		{name: "shopify wrong shape", account: shopAcct, script: func(s *plt.Server) { s.RespondNext(200, `{"customer":{}}`) },
			class: "bad_response", status: 200, msg: "customers"},
		{name: "shopify HTML 200", account: shopAcct, script: func(s *plt.Server) { s.RespondNext(200, "<!DOCTYPE html><p>Sorry</p>") },
			class: "bad_response", status: 200},
		{name: "shopify 400", account: shopAcct, script: func(s *plt.Server) { s.FailNext(400) }, class: "bad_response", status: 400},
		{name: "stripe revoked", account: stripeAcct, script: func(s *plt.Server) { s.RevokeToken(stripeToken) },
			class: "unauthorized", status: 401, msg: "Expired API Key"},
		{name: "stripe unknown key", account: profilelookup.Account{Provider: "stripe", Name: acct, AccessToken: "sk_test_unknownKeyValue9876"},
			class: "unauthorized", status: 401, msg: "Invalid API Key"},
		{name: "stripe wrong account", account: profilelookup.Account{Provider: "stripe", Name: "acct_Other", AccessToken: stripeToken},
			class: "unauthorized", status: 403, msg: "account_invalid"},
		{name: "stripe 429", account: stripeAcct, script: func(s *plt.Server) { s.RateLimitNext(1, 0) },
			class: "rate_limited", status: 429, msg: "rate_limit"},
		{name: "stripe 429 Retry-After", account: stripeAcct, script: func(s *plt.Server) { s.RateLimitNext(1, 2*time.Second) },
			class: "rate_limited", status: 429, retryAfter: 2 * time.Second},
		{name: "stripe 400 echoes the query", account: stripeAcct,
			script: func(s *plt.Server) {
				s.RespondNext(400, `{"error":{"type":"invalid_request_error","message":"Bad query: email:'X@Example.com'"}}`)
			},
			class: "bad_response", status: 400, msg: "[email]"},
		{name: "stripe 500", account: stripeAcct, script: func(s *plt.Server) { s.FailNext(500) }, class: "temporary", status: 500, msg: "api_error"},
		{name: "stripe garbage", account: stripeAcct, script: func(s *plt.Server) { s.RespondNext(200, "not json") }, class: "bad_response", status: 200},
		{name: "stripe subscriptions 502", account: stripeAcct,
			script: func(s *plt.Server) {
				s.RespondNext(200, `{"object":"search_result","data":[{"id":"cus_X","object":"customer","email":"x@example.com","created":1}],"has_more":false,"next_page":null,"url":"/v1/customers/search"}`)
				s.FailNext(502)
			},
			class: "temporary", status: 502, step: "list subscriptions"},
		{name: "stripe subscriptions garbage", account: stripeAcct,
			script: func(s *plt.Server) {
				s.RespondNext(200, `{"object":"search_result","data":[{"id":"cus_X","object":"customer","email":"x@example.com","created":1}],"has_more":false,"next_page":null,"url":"/v1/customers/search"}`)
				s.RespondNext(200, `{"object":"list","data":{}}`)
			},
			class: "bad_response", status: 200, step: "list subscriptions"},
		{name: "unknown provider", account: profilelookup.Account{Provider: "zendesk", Name: "x", AccessToken: "t"},
			class: "unauthorized", step: "check account"},
		{name: "shop name with a host", account: profilelookup.Account{Provider: "shopify", Name: "evil.example/x?", AccessToken: shopToken},
			class: "unauthorized", step: "check account", msg: "malformed shop name"},
		{name: "no token", account: profilelookup.Account{Provider: "stripe", Name: acct},
			class: "unauthorized", step: "check account", msg: "no access token"},
		{name: "token with newline", account: profilelookup.Account{Provider: "shopify", Name: shop, AccessToken: "shpat_x\r\nX-Evil: 1"},
			class: "unauthorized", step: "check account"},
		{name: "bad acct id", account: profilelookup.Account{Provider: "stripe", Name: "acct_x/../y", AccessToken: stripeToken},
			class: "unauthorized", step: "check account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t)
			srv.AddShopifyCustomer(shop, plt.ShopifyCustomer{Email: "x@example.com"})
			srv.AddStripeCustomer(acct, plt.StripeCustomer{Email: "x@example.com"})
			if tt.script != nil {
				tt.script(srv)
			}
			before := srv.Calls("")
			p, ok, err := c.Lookup(context.Background(), tt.account, "x@example.com")
			if err == nil {
				t.Fatalf("Lookup = %+v, %v, nil; want a %s error", p, ok, tt.class)
			}
			if ok {
				t.Error("ok = true with an error")
			}
			var le *profilelookup.LookupError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v is not a *LookupError", err, err)
			}
			if le.Class != tt.class || profilelookup.Classify(err) != tt.class || profilelookup.Classify(fmt.Errorf("wrapped: %w", err)) != tt.class {
				t.Errorf("class %q, want %q: %v", le.Class, tt.class, err)
			}
			if le.Status != tt.status {
				t.Errorf("status %d, want %d: %v", le.Status, tt.status, err)
			}
			if le.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter %v, want %v", le.RetryAfter, tt.retryAfter)
			}
			if want := tt.class == "rate_limited" || tt.class == "temporary"; le.Temporary() != want {
				t.Errorf("Temporary() = %v, want %v", le.Temporary(), want)
			}
			step := tt.step
			if step == "" {
				step = "search customers"
			}
			msg := err.Error()
			if le.Step != step || !strings.Contains(msg, step) {
				t.Errorf("step %q, want %q: %s", le.Step, step, msg)
			}
			if !strings.Contains(msg, strings.TrimSpace(tt.account.Provider)) || le.Provider == "" {
				t.Errorf("error does not name the provider: %s", msg)
			}
			if tt.account.Name != "" && !strings.Contains(strings.ToLower(msg), strings.ToLower(strings.TrimSuffix(tt.account.Name, ".myshopify.com"))) {
				t.Errorf("error does not name the account: %s", msg)
			}
			if tt.msg != "" && !strings.Contains(msg, tt.msg) {
				t.Errorf("error %q does not contain %q", msg, tt.msg)
			}
			for _, tok := range []string{shopToken, stripeToken, tt.account.AccessToken} {
				if len(tok) > 8 && (strings.Contains(msg, tok) || strings.Contains(le.Message, tok)) {
					t.Errorf("error contains the access token: %s", msg)
				}
			}
			if strings.Contains(msg, "x@example.com") {
				t.Errorf("error contains the email: %s", msg)
			}
			made := srv.Calls("") - before
			wantCalls := 1
			switch {
			case tt.step == "check account":
				wantCalls = 0
			case tt.step == "list subscriptions":
				wantCalls = 2
			}
			if made != wantCalls {
				t.Errorf("%d requests, want %d (no retries)", made, wantCalls)
			}
		})
	}
}

// TestTokenScrubbed: a provider that echoes the token in its error bodies
// (or HTML) does not get it into the error.
func TestTokenScrubbed(t *testing.T) {
	for _, status := range []int{200, 400, 401, 403, 404, 429, 500} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := r.Header.Get("X-Shopify-Access-Token") + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			w.WriteHeader(status)
			if r.Header.Get("X-Shopify-Access-Token") != "" {
				fmt.Fprintf(w, `{"errors":"bad token %s (also %s)"} garbage`, tok, "shpat_someOtherToken99")
			} else {
				fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: %s; %s"}}garbage`, tok, "sk_live_****1234")
			}
		}))
		c := profilelookup.New(srv.Client(),
			profilelookup.WithShopifyBaseURL(func(string) string { return srv.URL }),
			profilelookup.WithStripeBaseURL(srv.URL))
		opaque := []profilelookup.Account{
			{Provider: "shopify", Name: shop, AccessToken: "opaque-Token-0123456789"},
			{Provider: "stripe", Name: acct, AccessToken: "opaque-Token-0123456789"},
		}
		for _, a := range append([]profilelookup.Account{shopAcct, stripeAcct}, opaque...) {
			_, _, err := c.Lookup(context.Background(), a, "x@example.com")
			if err == nil {
				t.Fatalf("%d %s: no error", status, a.Provider)
			}
			msg := err.Error()
			if strings.Contains(msg, a.AccessToken) || strings.Contains(msg, "shpat_some") || strings.Contains(msg, "sk_live_") {
				t.Errorf("%d %s: token in error: %s", status, a.Provider, msg)
			}
		}
		srv.Close()
	}
}

func TestContext(t *testing.T) {
	srv, c := setup(t)
	srv.AddShopifyCustomer(shop, plt.ShopifyCustomer{Email: "x@example.com"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, a := range []profilelookup.Account{shopAcct, stripeAcct} {
		_, _, err := c.Lookup(ctx, a, "x@example.com")
		if !errors.Is(err, context.Canceled) || profilelookup.Classify(err) != "temporary" {
			t.Errorf("%s with a canceled context: %v (%s)", a.Provider, err, profilelookup.Classify(err))
		}
	}
	if n := srv.Calls(""); n != 0 {
		t.Errorf("%d requests with a canceled context", n)
	}

	// A deadline that ends while the provider is slow.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	c = profilelookup.New(nil, profilelookup.WithStripeBaseURL(slow.URL), profilelookup.WithShopifyBaseURL(func(string) string { return slow.URL }))
	for _, a := range []profilelookup.Account{shopAcct, stripeAcct} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		_, _, err := c.Lookup(ctx, a, "x@example.com")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || profilelookup.Classify(err) != "temporary" {
			t.Errorf("%s past the deadline: %v", a.Provider, err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("%s: Lookup ignored the deadline", a.Provider)
		}
		if err != nil && strings.Contains(err.Error(), "x@example.com") {
			t.Errorf("transport error contains the email: %v", err)
		}
	}
}

func TestResponseLimitAndRedirect(t *testing.T) {
	srv, c := setup(t)
	srv.RespondNext(200, `{"customers":[],"pad":"`+strings.Repeat("x", profilelookup.MaxResponseBytes)+`"}`)
	_, _, err := c.Lookup(context.Background(), shopAcct, "x@example.com")
	if profilelookup.Classify(err) != "bad_response" || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge response: %v", err)
	}

	var leaked sync.Map
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store("hit", r.Header.Get("X-Shopify-Access-Token"))
	}))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL+"/steal", http.StatusFound))
	defer redirect.Close()
	c = profilelookup.New(&http.Client{}, profilelookup.WithShopifyBaseURL(func(string) string { return redirect.URL }))
	_, _, err = c.Lookup(context.Background(), shopAcct, "x@example.com")
	if profilelookup.Classify(err) != "bad_response" || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("redirect: %v", err)
	}
	if _, hit := leaked.Load("hit"); hit {
		t.Error("redirect followed")
	}
}

func TestNextLinkElsewhereNotFollowed(t *testing.T) {
	var hits int
	var mu sync.Mutex
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer other.Close()
	shopSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<`+other.URL+`/admin/api/2024-10/customers/search.json?page_info=abc>; rel="next"`)
		fmt.Fprint(w, `{"customers":[]}`)
	}))
	defer shopSrv.Close()
	c := profilelookup.New(nil, profilelookup.WithShopifyBaseURL(func(string) string { return shopSrv.URL }))
	_, _, err := c.Lookup(context.Background(), shopAcct, "x@example.com")
	if profilelookup.Classify(err) != "bad_response" || hits != 0 {
		t.Errorf("Lookup = %v, %d requests elsewhere", err, hits)
	}
}

func TestClassify(t *testing.T) {
	if got := profilelookup.Classify(nil); got != "" {
		t.Errorf("Classify(nil) = %q", got)
	}
	if got := profilelookup.Classify(context.DeadlineExceeded); got != "temporary" {
		t.Errorf("Classify(DeadlineExceeded) = %q", got)
	}
	if got := profilelookup.Classify(errors.New("x")); got != "bad_response" {
		t.Errorf("Classify(other) = %q", got)
	}
	cause := errors.New("cause")
	le := &profilelookup.LookupError{Provider: "stripe", Account: acct, Step: "search customers", Class: "temporary", Err: cause}
	if !errors.Is(le, cause) {
		t.Error("LookupError does not unwrap to its cause")
	}
}

func TestConcurrent(t *testing.T) {
	srv, c := setup(t)
	srv.AddShopifyCustomer(shop, plt.ShopifyCustomer{ID: 1, Email: "x@example.com", OrdersCount: 2})
	srv.AddStripeCustomer(acct, plt.StripeCustomer{ID: "cus_X", Email: "x@example.com"}, plt.StripeSubscription{Status: "active"})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			a := shopAcct
			if i%2 == 1 {
				a = stripeAcct
			}
			if _, ok, err := c.Lookup(context.Background(), a, "X@example.com"); err != nil || !ok {
				t.Errorf("Lookup: %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	if n := srv.Calls(""); n != 30 {
		t.Errorf("%d requests, want 30", n)
	}
}

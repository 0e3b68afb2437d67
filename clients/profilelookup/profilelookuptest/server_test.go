package profilelookuptest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	plt "github.com/helpdeskflow/helpdeskflow/clients/profilelookup/profilelookuptest"
)

func get(t *testing.T, rawURL string, header map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: body %q is not a JSON object", rawURL, b)
	}
	return resp.StatusCode, resp.Header, m
}

func TestShopify(t *testing.T) {
	s := plt.NewServer()
	defer s.Close()
	s.SetToken(plt.Shopify, "acme", "shpat_good")
	s.AddShopifyCustomer("acme", plt.ShopifyCustomer{ID: 123, Email: "Bob@Example.com", OrdersCount: 3, TotalSpent: "150.00",
		Tags: "vip, wholesale", CreatedAt: "2024-01-02T03:04:05-05:00", LastOrderName: "#1003", VerifiedEmail: true})
	s.AddShopifyCustomer("acme", plt.ShopifyCustomer{Email: "bob@example.com"})
	s.AddShopifyCustomer("acme", plt.ShopifyCustomer{Email: "bob@example.com"})
	auth := map[string]string{"X-Shopify-Access-Token": "shpat_good"}
	base := s.ShopifyBaseURL()("acme") + "/admin/api/2024-10/customers/search.json?"

	st, _, m := get(t, base+url.Values{"query": {`email:"BOB@example.com"`}}.Encode(), auth)
	cs, _ := m["customers"].([]any)
	if st != 200 || len(cs) != 3 {
		t.Fatalf("search = %d %v", st, m)
	}
	first := cs[0].(map[string]any)
	for k, v := range map[string]any{"id": 123.0, "orders_count": 3.0, "total_spent": "150.00", "currency": "USD", "state": "enabled",
		"tags": "vip, wholesale", "created_at": "2024-01-02T03:04:05-05:00", "last_order_name": "#1003", "verified_email": true} {
		if !reflect.DeepEqual(first[k], v) {
			t.Errorf("%s = %#v, want %#v", k, first[k], v)
		}
	}
	if v, has := cs[1].(map[string]any)["last_order_name"]; !has || v != nil {
		t.Errorf("last_order_name without orders = %#v, want null", v)
	}

	// fields and pagination.
	st, h, m := get(t, base+url.Values{"query": {"email:bob@example.com"}, "fields": {"id,email"}, "limit": {"2"}}.Encode(), auth)
	cs = m["customers"].([]any)
	if st != 200 || len(cs) != 2 || len(cs[0].(map[string]any)) != 2 {
		t.Fatalf("page 1 = %d %v", st, m)
	}
	link := h.Get("Link")
	next := link[strings.Index(link, "<")+1 : strings.Index(link, ">")]
	if !strings.Contains(link, `rel="next"`) || !strings.Contains(next, "page_info=") || !strings.Contains(next, "fields=") {
		t.Fatalf("Link = %q", link)
	}
	if st, h, m = get(t, next, auth); st != 200 || len(m["customers"].([]any)) != 1 || !strings.Contains(h.Get("Link"), `rel="previous"`) || strings.Contains(h.Get("Link"), `rel="next"`) {
		t.Errorf("page 2 = %d %v Link %q", st, m, h.Get("Link"))
	}
	if st, _, _ = get(t, next+"&query=x", auth); st != 400 {
		t.Errorf("page_info with query = %d, want 400", st)
	}

	// Errors.
	if st, _, m = get(t, base+"query=email:bob@example.com", map[string]string{"X-Shopify-Access-Token": "shpat_bad"}); st != 401 ||
		m["errors"] != "[API] Invalid API key or access token (unrecognized login or wrong password)" {
		t.Errorf("bad token = %d %v", st, m)
	}
	if st, _, _ = get(t, s.ShopifyBaseURL()("other")+"/admin/api/2024-10/customers/search.json", auth); st != 404 {
		t.Errorf("unknown shop = %d", st)
	}
	s.RateLimitNext(1, 2*time.Second)
	if st, h, m = get(t, base, auth); st != 429 || h.Get("Retry-After") != "2.0" || !strings.Contains(m["errors"].(string), "Exceeded") {
		t.Errorf("rate limited = %d %q %v", st, h.Get("Retry-After"), m)
	}
	s.FailNext(402)
	if st, _, m = get(t, base, auth); st != 402 || m["errors"] != "Unavailable Shop" {
		t.Errorf("402 = %d %v", st, m)
	}
	s.RevokeToken("shpat_good")
	if st, _, _ = get(t, base, auth); st != 401 {
		t.Errorf("revoked = %d", st)
	}
	if n := s.Calls("/admin/api/2024-10/customers/search.json"); n != 9 {
		t.Errorf("Calls = %d, want 9", n)
	}
}

func TestStripe(t *testing.T) {
	s := plt.NewServer()
	defer s.Close()
	s.SetToken(plt.Stripe, "acct_1", "sk_test_goodkey12345678")
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	s.AddStripeCustomer("acct_1", plt.StripeCustomer{ID: "cus_A", Email: "O'Brien@example.com", Currency: "usd", Balance: 5},
		plt.StripeSubscription{ID: "sub_old", Status: "canceled", Created: t0},
		plt.StripeSubscription{ID: "sub_new", Status: "active", PriceID: "price_1", PriceNickname: "Pro", Created: t0.Add(time.Hour)})
	auth := map[string]string{"Authorization": "Bearer sk_test_goodkey12345678"}

	st, h, m := get(t, s.StripeBaseURL()+"/v1/customers/search?"+url.Values{"query": {`email:'o\'brien@example.com'`}}.Encode(), auth)
	if st != 200 || m["object"] != "search_result" || m["has_more"] != false || m["next_page"] != nil || m["url"] != "/v1/customers/search" || h.Get("Request-Id") == "" {
		t.Fatalf("search = %d %v", st, m)
	}
	c := m["data"].([]any)[0].(map[string]any)
	if c["id"] != "cus_A" || c["object"] != "customer" || c["currency"] != "usd" || c["balance"] != 5.0 || c["livemode"] != false || c["delinquent"] != false {
		t.Errorf("customer = %v", c)
	}
	if st, _, m = get(t, s.StripeBaseURL()+"/v1/customers/search?"+url.Values{"query": {`email:'o'brien@example.com'`}}.Encode(), auth); st != 400 {
		t.Errorf("unescaped quote = %d %v", st, m)
	}

	_, _, m = get(t, s.StripeBaseURL()+"/v1/subscriptions?customer=cus_A", auth)
	if d := m["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != "sub_new" {
		t.Errorf("default list (no canceled) = %v", m)
	}
	_, _, m = get(t, s.StripeBaseURL()+"/v1/subscriptions?customer=cus_A&status=all", auth)
	d := m["data"].([]any)
	if m["object"] != "list" || len(d) != 2 || d[0].(map[string]any)["id"] != "sub_new" {
		t.Fatalf("status=all = %v", m)
	}
	price := d[0].(map[string]any)["items"].(map[string]any)["data"].([]any)[0].(map[string]any)["price"].(map[string]any)
	if price["id"] != "price_1" || price["nickname"] != "Pro" {
		t.Errorf("price = %v", price)
	}

	if st, _, m = get(t, s.StripeBaseURL()+"/v1/customers/search?query=email:'a@b.c'", map[string]string{"Authorization": "Bearer sk_test_wrongkey12345678"}); st != 401 ||
		!strings.Contains(m["error"].(map[string]any)["message"].(string), "sk_test_") || strings.Contains(m["error"].(map[string]any)["message"].(string), "wrongkey") {
		t.Errorf("bad key = %d %v", st, m)
	}
	hdr := map[string]string{"Authorization": "Bearer sk_test_goodkey12345678", "Stripe-Account": "acct_2"}
	if st, _, m = get(t, s.StripeBaseURL()+"/v1/customers/search?query=email:'a@b.c'", hdr); st != 403 || m["error"].(map[string]any)["code"] != "account_invalid" {
		t.Errorf("other account = %d %v", st, m)
	}
	s.FailNext(500)
	if st, _, m = get(t, s.StripeBaseURL()+"/v1/subscriptions", auth); st != 500 || m["error"].(map[string]any)["type"] != "api_error" {
		t.Errorf("500 = %d %v", st, m)
	}
	if st, _, _ = get(t, s.StripeBaseURL()+"/v1/nope", auth); st != 404 {
		t.Errorf("unknown path = %d", st)
	}
	reqs := s.Requests()
	if len(reqs) != 8 || reqs[6].Status != 500 || reqs[5].Account != "acct_2" || s.Calls("/v1/subscriptions") != 3 {
		t.Errorf("recorded %d requests: %+v", len(reqs), reqs)
	}
}

func TestHang(t *testing.T) {
	s := plt.NewServer()
	defer s.Close()
	s.SetToken(plt.Shopify, "acme", "shpat_good")
	s.Hang(plt.Shopify, true)
	client := &http.Client{Timeout: 200 * time.Millisecond}
	errs := make(chan error, 1)
	go func() {
		resp, err := client.Get(s.ShopifyBaseURL()("acme") + "/admin/api/2024-10/customers/search.json?query=email:a@b.co")
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	for s.InFlight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := <-errs; err == nil {
		t.Fatal("a hung request was answered")
	}
	for s.InFlight() != 0 { // the server notices the client gave up
		time.Sleep(5 * time.Millisecond)
	}
	// Stripe still answers; so does Shopify once released.
	st, _, _ := get(t, s.StripeBaseURL()+"/v1/customers/search?query=email:'a@b.co'", map[string]string{"Authorization": "Bearer sk_x"})
	s.Hang(plt.Shopify, false)
	st2, _, _ := get(t, s.ShopifyBaseURL()("acme")+"/admin/api/2024-10/customers/search.json?query=email:a@b.co",
		map[string]string{"X-Shopify-Access-Token": "shpat_good"})
	if st != 401 || st2 != 200 {
		t.Fatalf("after the hang: stripe %d, shopify %d", st, st2)
	}
}

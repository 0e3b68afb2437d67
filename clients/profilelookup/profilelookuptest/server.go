// Package profilelookuptest is a fake of the two APIs profilelookup calls,
// on one httptest server on 127.0.0.1:
//
//   - Shopify Admin REST: GET /shops/{shop}/admin/api/{version}/customers/search.json
//     (ShopifyBaseURL routes a shop to its /shops/{shop} prefix), checking
//     X-Shopify-Access-Token, answering {"customers":[…]} with only the
//     requested fields, paginating with Link headers (rel="next" with a
//     page_info cursor, after which only limit and fields may be sent) and
//     failing like Shopify: {"errors":"…"} with 401, 402, 403, 404, 429 (with
//     Retry-After such as "2.0") or 5xx.
//   - Stripe: GET /v1/customers/search (query email:'…' with backslash
//     escapes; an unescaped quote is a 400) and GET /v1/subscriptions,
//     checking Authorization: Bearer and Stripe-Account, answering
//     search_result and list objects (next_page cursors) and failing like
//     Stripe: {"error":{"type":…,"code":…,"message":…}}.
//
// Email matching in searches is case-insensitive, as in both APIs. Each
// valid token belongs to one shop or account (SetToken); a request without
// a valid one gets the provider's 401. Failures can be scripted
// (RateLimitNext, FailNext, RespondNext), a provider can stop answering
// (Hang), and every request is recorded (Calls, Requests; a hung one only
// in Calls and InFlight). Methods are safe for concurrent use.
package profilelookuptest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Providers, as in SetToken and Request.Provider.
const (
	Shopify = "shopify"
	Stripe  = "stripe"
)

// ShopifyCustomer is a customer of a fake shop, with Shopify's REST
// fields. Zero values get defaults: ID a new id, TotalSpent "0.00",
// Currency "USD", State "enabled", CreatedAt a fixed 2024 time.
type ShopifyCustomer struct {
	ID            int64
	Email         string
	FirstName     string
	LastName      string
	OrdersCount   int
	TotalSpent    string // decimal string, as Shopify sends it: "150.00"
	Currency      string
	State         string // enabled, disabled, invited or declined
	Tags          string // comma-separated, as Shopify stores them: "vip, wholesale"
	CreatedAt     string // RFC 3339 with the shop's offset
	LastOrderName string // "" is JSON null
	VerifiedEmail bool
}

// StripeCustomer is a customer of a fake Stripe account. Zero values get
// defaults: ID a new cus_ id, Created a fixed 2024 time; an empty Currency
// is JSON null.
type StripeCustomer struct {
	ID         string
	Email      string
	Name       string
	Created    time.Time
	Currency   string
	Delinquent bool
	Balance    int64
	Livemode   bool
}

// StripeSubscription is a subscription of a StripeCustomer with one item.
// Zero values get defaults: ID a new sub_ id, Status "active", PriceID a
// new price_ id, Created a fixed 2024 time; an empty PriceNickname is JSON
// null.
type StripeSubscription struct {
	ID            string
	Status        string
	PriceID       string
	PriceNickname string
	Created       time.Time
}

// Request is one request the fake received.
type Request struct {
	// Provider is Shopify or Stripe.
	Provider string
	// Account is the shop, or for Stripe the Stripe-Account header.
	Account string
	// Path is the API path, without the /shops/{shop} prefix:
	// "/admin/api/2024-10/customers/search.json", "/v1/customers/search".
	Path   string
	Query  url.Values
	Header http.Header
	// Status is the HTTP status answered.
	Status int
}

type stripeCust struct {
	c    StripeCustomer
	subs []StripeSubscription
}

type stripeAccount struct {
	customers []*stripeCust
}

type scripted struct {
	status     int
	retryAfter time.Duration
	body       string // raw body for RespondNext; "" = the provider's error body
	raw        bool
}

// Server is the fake.
type Server struct {
	srv *httptest.Server

	mu        sync.Mutex
	shops     map[string][]ShopifyCustomer
	accounts  map[string]*stripeAccount
	tokens    map[[2]string]string // {provider, account} → token
	revoked   map[string]bool
	script    []scripted
	maxPage   int
	calls     map[string]int
	requests  []Request
	seq       int64
	requestID int
	hang      map[string]bool // providers whose requests are never answered
	inFlight  int

	closing   chan struct{} // closed by Close, ends hung requests
	closeOnce sync.Once
}

var fixedCreated = time.Date(2024, 1, 2, 8, 4, 5, 0, time.UTC)

// NewServer starts a fake; Close it when done.
func NewServer() *Server {
	s := &Server{
		shops:    map[string][]ShopifyCustomer{},
		accounts: map[string]*stripeAccount{},
		tokens:   map[[2]string]string{},
		revoked:  map[string]bool{},
		calls:    map[string]int{},
		seq:      1000,
		hang:     map[string]bool{},
		closing:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shops/{shop}/admin/api/{version}/customers/search.json", s.shopifySearch)
	mux.HandleFunc("/shops/{shop}/", func(w http.ResponseWriter, r *http.Request) {
		shopifyJSON(w, http.StatusNotFound, `{"errors":"Not Found"}`)
	})
	mux.HandleFunc("GET /v1/customers/search", s.stripeSearch)
	mux.HandleFunc("GET /v1/subscriptions", s.stripeSubscriptions)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		stripeFail(w, http.StatusNotFound, "invalid_request_error", "",
			fmt.Sprintf("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", r.Method, r.URL.Path))
	})
	s.srv = httptest.NewServer(s.record(mux))
	return s
}

// Close shuts the server down; hung requests (Hang) end without an answer.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// Hang makes every request to provider (Shopify or Stripe) from now on
// wait without an answer until the client gives up or the server closes,
// as a shop that never answers would; false answers again.
func (s *Server) Hang(provider string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang[provider] = on
}

// InFlight returns how many requests the fake has received and not
// answered yet (hung ones included).
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// ShopifyBaseURL returns the function for profilelookup.WithShopifyBaseURL:
// a shop's API base is {URL}/shops/{shop}.
func (s *Server) ShopifyBaseURL() func(shop string) string {
	base := s.srv.URL
	return func(shop string) string { return base + "/shops/" + url.PathEscape(shop) }
}

// StripeBaseURL returns the base URL for profilelookup.WithStripeBaseURL.
func (s *Server) StripeBaseURL() string { return s.srv.URL }

// AddShopifyCustomer adds a customer to the shop (creating the shop).
func (s *Server) AddShopifyCustomer(shop string, c ShopifyCustomer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == 0 {
		s.seq++
		c.ID = 7000000000000 + s.seq
	}
	if c.TotalSpent == "" {
		c.TotalSpent = "0.00"
	}
	if c.Currency == "" {
		c.Currency = "USD"
	}
	if c.State == "" {
		c.State = "enabled"
	}
	if c.CreatedAt == "" {
		c.CreatedAt = fixedCreated.In(time.FixedZone("EST", -5*3600)).Format(time.RFC3339)
	}
	s.shops[shop] = append(s.shops[shop], c)
}

// AddStripeCustomer adds a customer, with its subscriptions, to the
// account (creating the account).
func (s *Server) AddStripeCustomer(account string, c StripeCustomer, subs ...StripeSubscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == "" {
		s.seq++
		c.ID = fmt.Sprintf("cus_Fake%d", s.seq)
	}
	if c.Created.IsZero() {
		c.Created = fixedCreated
	}
	subs = slices.Clone(subs)
	for i := range subs {
		if subs[i].ID == "" {
			s.seq++
			subs[i].ID = fmt.Sprintf("sub_Fake%d", s.seq)
		}
		if subs[i].Status == "" {
			subs[i].Status = "active"
		}
		if subs[i].PriceID == "" {
			s.seq++
			subs[i].PriceID = fmt.Sprintf("price_Fake%d", s.seq)
		}
		if subs[i].Created.IsZero() {
			subs[i].Created = fixedCreated
		}
	}
	a := s.account(account)
	a.customers = append(a.customers, &stripeCust{c: c, subs: subs})
}

func (s *Server) account(id string) *stripeAccount {
	a := s.accounts[id]
	if a == nil {
		a = &stripeAccount{}
		s.accounts[id] = a
	}
	return a
}

// SetToken makes token the valid access token of the shop (provider
// Shopify) or Stripe account (provider Stripe), replacing any previous
// one; it creates the shop or account. A Stripe token selects its account
// without a Stripe-Account header.
func (s *Server) SetToken(provider, account, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[[2]string{provider, account}] = token
	delete(s.revoked, token)
	switch provider {
	case Shopify:
		if _, ok := s.shops[account]; !ok {
			s.shops[account] = nil
		}
	case Stripe:
		s.account(account)
	}
}

// RevokeToken makes token invalid (as when the merchant uninstalls the app
// or revokes access): requests with it get a 401.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[token] = true
}

// RateLimitNext makes the next n requests (to either API) answer 429 with
// the provider's body and, when retryAfter > 0, a Retry-After in seconds
// with one decimal ("2.0", as Shopify sends it; Stripe normally sends
// none, so pass 0 to imitate it).
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.script = append(s.script, scripted{status: http.StatusTooManyRequests, retryAfter: retryAfter})
	}
}

// FailNext makes the next request (to either API) answer status with the
// provider's error body for it. Calls queue up, in order, after any
// RateLimitNext.
func (s *Server) FailNext(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, scripted{status: status})
}

// RespondNext makes the next request answer status with exactly body (as
// application/json), to imitate a broken or surprising answer.
func (s *Server) RespondNext(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, scripted{status: status, body: body, raw: true})
}

// SetMaxPageSize caps the page size of every search and list below the
// requested limit (0: no cap), to exercise pagination with few records.
func (s *Server) SetMaxPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPage = n
}

// Calls returns how many requests were made to the API path (without the
// /shops/{shop} prefix), such as "/v1/customers/search"; "" counts all.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == "" {
		return len(s.requests)
	}
	return s.calls[path]
}

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Query = cloneValues(r.Query)
		r.Header = r.Header.Clone()
		out[i] = r
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// record counts and records each request, and answers scripted ones.
func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := Request{Provider: Stripe, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()}
		if rest, ok := strings.CutPrefix(r.URL.Path, "/shops/"); ok {
			shop, p, _ := strings.Cut(rest, "/")
			req.Provider, req.Account, req.Path = Shopify, shop, "/"+p
		} else {
			req.Account = r.Header.Get("Stripe-Account")
		}
		s.mu.Lock()
		s.calls[req.Path]++
		s.requestID++
		rid := s.requestID
		s.inFlight++
		hang := s.hang[req.Provider]
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
		if hang {
			select {
			case <-r.Context().Done():
			case <-s.closing:
			}
			return
		}
		s.mu.Lock()
		var sc *scripted
		if len(s.script) > 0 {
			sc = &s.script[0]
			s.script = s.script[1:]
		}
		s.mu.Unlock()

		if req.Provider == Stripe {
			w.Header().Set("Request-Id", fmt.Sprintf("req_fake%06d", rid))
			w.Header().Set("Stripe-Version", cmpOr(r.Header.Get("Stripe-Version"), "2024-06-20"))
		} else {
			w.Header().Set("X-Request-Id", fmt.Sprintf("fake-%06d", rid))
		}
		sw := &statusWriter{ResponseWriter: w}
		switch {
		case sc == nil:
			next.ServeHTTP(sw, r)
		case sc.raw:
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			sw.WriteHeader(sc.status)
			_, _ = sw.Write([]byte(sc.body))
		default:
			if sc.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.FormatFloat(sc.retryAfter.Seconds(), 'f', 1, 64))
			}
			if req.Provider == Shopify {
				shopifyScripted(sw, sc.status)
			} else {
				stripeScripted(sw, sc.status)
			}
		}
		req.Status = sw.status
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ---- Shopify ----

const shopifyUnauthorized = `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`

func shopifyJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func shopifyScripted(w http.ResponseWriter, status int) {
	var msg string
	switch status {
	case http.StatusUnauthorized:
		shopifyJSON(w, status, shopifyUnauthorized)
		return
	case http.StatusPaymentRequired, http.StatusForbidden, http.StatusLocked:
		msg = "Unavailable Shop"
	case http.StatusTooManyRequests:
		msg = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
	default:
		msg = http.StatusText(status)
	}
	b, _ := json.Marshal(map[string]string{"errors": msg})
	shopifyJSON(w, status, string(b))
}

var shopifyVersion = regexp.MustCompile(`^(20\d\d-(01|04|07|10)|unstable)$`)

type shopifyCursor struct {
	Query  string `json:"q"`
	Offset int    `json:"o"`
}

func (s *Server) shopifySearch(w http.ResponseWriter, r *http.Request) {
	shop, version := r.PathValue("shop"), r.PathValue("version")
	s.mu.Lock()
	customers, exists := s.shops[shop]
	customers = slices.Clone(customers)
	token, hasToken := s.tokens[[2]string{Shopify, shop}]
	revoked := s.revoked[token]
	maxPage := s.maxPage
	s.mu.Unlock()
	if !exists {
		shopifyJSON(w, http.StatusNotFound, `{"errors":"Not Found"}`)
		return
	}
	if got := r.Header.Get("X-Shopify-Access-Token"); !hasToken || revoked || got == "" || got != token {
		shopifyJSON(w, http.StatusUnauthorized, shopifyUnauthorized)
		return
	}
	if !shopifyVersion.MatchString(version) {
		shopifyJSON(w, http.StatusNotFound, `{"errors":"Not Found"}`)
		return
	}
	w.Header().Set("X-Shopify-Shop-Api-Call-Limit", "1/40")
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 250 {
			shopifyJSON(w, http.StatusBadRequest, `{"errors":{"limit":"Invalid limit: must be between 1 and 250"}}`)
			return
		}
		limit = n
	}
	cur := shopifyCursor{Query: q.Get("query")}
	if pi := q.Get("page_info"); pi != "" {
		for k := range q {
			if k != "page_info" && k != "limit" && k != "fields" {
				shopifyJSON(w, http.StatusBadRequest, fmt.Sprintf(`{"errors":{"page_info":"Invalid page_info: %s cannot be passed with page_info"}}`, k))
				return
			}
		}
		b, err := base64.RawURLEncoding.DecodeString(pi)
		if err != nil || json.Unmarshal(b, &cur) != nil || cur.Offset < 0 {
			shopifyJSON(w, http.StatusBadRequest, `{"errors":{"page_info":"Invalid value."}}`)
			return
		}
	}
	email, ok := parseShopifyEmailQuery(cur.Query)
	var matched []ShopifyCustomer
	if ok {
		for _, c := range customers {
			if strings.EqualFold(c.Email, email) {
				matched = append(matched, c)
			}
		}
	}
	size := limit
	if maxPage > 0 {
		size = min(size, maxPage)
	}
	start := min(cur.Offset, len(matched))
	end := min(start+size, len(matched))
	var fields []string
	if f := q.Get("fields"); f != "" {
		fields = strings.Split(f, ",")
	}
	out := make([]map[string]any, 0, end-start)
	for _, c := range matched[start:end] {
		out = append(out, shopifyJSONCustomer(c, fields))
	}
	var links []string
	pageURL := func(offset int) string {
		b, _ := json.Marshal(shopifyCursor{Query: cur.Query, Offset: offset})
		v := url.Values{"limit": {strconv.Itoa(limit)}, "page_info": {base64.RawURLEncoding.EncodeToString(b)}}
		if f := q.Get("fields"); f != "" {
			v.Set("fields", f)
		}
		return fmt.Sprintf("%s/shops/%s/admin/api/%s/customers/search.json?%s", s.srv.URL, shop, version, v.Encode())
	}
	if start > 0 {
		links = append(links, fmt.Sprintf(`<%s>; rel="previous"`, pageURL(max(start-size, 0))))
	}
	if end < len(matched) {
		links = append(links, fmt.Sprintf(`<%s>; rel="next"`, pageURL(end)))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	b, _ := json.Marshal(map[string]any{"customers": out})
	shopifyJSON(w, http.StatusOK, string(b))
}

// parseShopifyEmailQuery reads email:"…" (backslash escapes) or
// email:value; false for any other query.
func parseShopifyEmailQuery(q string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(q), "email:")
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(rest, `"`) {
		return rest, rest != "" && !strings.ContainsAny(rest, " \"")
	}
	v, tail, ok := unquote(rest, '"')
	return v, ok && strings.TrimSpace(tail) == ""
}

// unquote reads a quote-delimited string with backslash escapes at the
// start of s, returning it and what follows.
func unquote(s string, quote byte) (string, string, bool) {
	if len(s) == 0 || s[0] != quote {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", s, false
			}
			i++
			b.WriteByte(s[i])
		case quote:
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", s, false
}

func shopifyJSONCustomer(c ShopifyCustomer, fields []string) map[string]any {
	var lastOrder any
	if c.LastOrderName != "" {
		lastOrder = c.LastOrderName
	}
	full := map[string]any{
		"id":                   c.ID,
		"email":                c.Email,
		"first_name":           c.FirstName,
		"last_name":            c.LastName,
		"orders_count":         c.OrdersCount,
		"state":                c.State,
		"total_spent":          c.TotalSpent,
		"last_order_name":      lastOrder,
		"note":                 nil,
		"verified_email":       c.VerifiedEmail,
		"multipass_identifier": nil,
		"tax_exempt":           false,
		"tags":                 c.Tags,
		"currency":             c.Currency,
		"phone":                nil,
		"created_at":           c.CreatedAt,
		"updated_at":           c.CreatedAt,
		"admin_graphql_api_id": fmt.Sprintf("gid://shopify/Customer/%d", c.ID),
	}
	if len(fields) == 0 {
		return full
	}
	out := map[string]any{}
	for _, f := range fields {
		if v, ok := full[strings.TrimSpace(f)]; ok {
			out[strings.TrimSpace(f)] = v
		}
	}
	return out
}

// ---- Stripe ----

func stripeFail(w http.ResponseWriter, status int, typ, code, message string) {
	e := map[string]any{"type": typ, "message": message}
	if code != "" {
		e["code"] = code
		e["doc_url"] = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(code, "_", "-")
	}
	stripeJSON(w, status, map[string]any{"error": e})
}

func stripeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func stripeScripted(w http.ResponseWriter, status int) {
	switch {
	case status == http.StatusUnauthorized:
		stripeFail(w, status, "invalid_request_error", "", "Invalid API Key provided: sk_test_************oops")
	case status == http.StatusForbidden:
		stripeFail(w, status, "invalid_request_error", "account_invalid", "The provided key does not have access to account (or that account does not exist). Application access may have been revoked.")
	case status == http.StatusTooManyRequests:
		stripeFail(w, status, "invalid_request_error", "rate_limit", "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.")
	case status >= 500:
		stripeFail(w, status, "api_error", "", "An unknown error occurred")
	default:
		stripeFail(w, status, "invalid_request_error", "", http.StatusText(status))
	}
}

// maskKey masks a key the way Stripe's errors do: sk_test_****1234.
func maskKey(k string) string {
	prefix := ""
	if i := strings.Index(k, "_"); i >= 0 {
		if j := strings.Index(k[i+1:], "_"); j >= 0 && j < 5 {
			prefix = k[:i+1+j+1]
		}
	}
	if len(k)-len(prefix) <= 8 {
		return prefix + "****"
	}
	return prefix + strings.Repeat("*", len(k)-len(prefix)-4) + k[len(k)-4:]
}

// stripeAuth returns the account of the request, or answers the error.
func (s *Server) stripeAuth(w http.ResponseWriter, r *http.Request) (*stripeAccount, string, bool) {
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || key == "" {
		stripeFail(w, http.StatusUnauthorized, "invalid_request_error", "",
			"You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
		return nil, "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := ""
	for k, t := range s.tokens {
		if k[0] == Stripe && t == key {
			id = k[1]
		}
	}
	if id == "" {
		stripeFail(w, http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided: "+maskKey(key))
		return nil, "", false
	}
	if s.revoked[key] {
		stripeFail(w, http.StatusUnauthorized, "invalid_request_error", "",
			"Expired API Key provided: "+maskKey(key)+". Application access may have been revoked.")
		return nil, "", false
	}
	if h := r.Header.Get("Stripe-Account"); h != "" && h != id {
		stripeFail(w, http.StatusForbidden, "invalid_request_error", "account_invalid",
			fmt.Sprintf("The provided key '%s' does not have access to account '%s' (or that account does not exist). Application access may have been revoked.", maskKey(key), h))
		return nil, "", false
	}
	a := s.accounts[id]
	return a, id, true
}

func stripeLimit(w http.ResponseWriter, q url.Values, def int) (int, bool) {
	v := q.Get("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100 {
		stripeFail(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer",
			"Invalid integer: "+v+"; limit must be between 1 and 100")
		return 0, false
	}
	return n, true
}

// parseStripeEmailQuery reads email:'…' or email:"…" (backslash escapes).
func parseStripeEmailQuery(q string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(q), "email:")
	if !ok || rest == "" {
		return "", false
	}
	v, tail, ok := unquote(rest, rest[0])
	return v, ok && (rest[0] == '\'' || rest[0] == '"') && strings.TrimSpace(tail) == ""
}

func stripeJSONCustomer(c StripeCustomer) map[string]any {
	var currency any
	if c.Currency != "" {
		currency = c.Currency
	}
	return map[string]any{
		"id":                c.ID,
		"object":            "customer",
		"address":           nil,
		"balance":           c.Balance,
		"created":           c.Created.Unix(),
		"currency":          currency,
		"default_source":    nil,
		"delinquent":        c.Delinquent,
		"description":       nil,
		"discount":          nil,
		"email":             c.Email,
		"invoice_prefix":    strings.ToUpper(strings.TrimPrefix(c.ID, "cus_")),
		"livemode":          c.Livemode,
		"metadata":          map[string]any{},
		"name":              c.Name,
		"phone":             nil,
		"preferred_locales": []any{},
		"shipping":          nil,
		"tax_exempt":        "none",
		"test_clock":        nil,
	}
}

func (s *Server) stripeSearch(w http.ResponseWriter, r *http.Request) {
	a, _, ok := s.stripeAuth(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, ok := stripeLimit(w, q, 10)
	if !ok {
		return
	}
	query := q.Get("query")
	email, ok := parseStripeEmailQuery(query)
	if !ok {
		stripeFail(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_string",
			"The search query could not be parsed: "+query)
		return
	}
	offset := 0
	if p := q.Get("page"); p != "" {
		b, err := base64.RawURLEncoding.DecodeString(p)
		var cur shopifyCursor
		if err != nil || json.Unmarshal(b, &cur) != nil || cur.Query != query || cur.Offset < 0 {
			stripeFail(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid page: "+p)
			return
		}
		offset = cur.Offset
	}
	s.mu.Lock()
	var matched []map[string]any
	for _, c := range a.customers {
		if strings.EqualFold(c.c.Email, email) {
			matched = append(matched, stripeJSONCustomer(c.c))
		}
	}
	if s.maxPage > 0 {
		limit = min(limit, s.maxPage)
	}
	s.mu.Unlock()
	start := min(offset, len(matched))
	end := min(start+limit, len(matched))
	var next any
	if end < len(matched) {
		b, _ := json.Marshal(shopifyCursor{Query: query, Offset: end})
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	data := matched[start:end]
	if data == nil {
		data = []map[string]any{}
	}
	stripeJSON(w, http.StatusOK, map[string]any{
		"object": "search_result", "data": data, "has_more": next != nil,
		"next_page": next, "url": "/v1/customers/search",
	})
}

var subscriptionStatuses = []string{"active", "trialing", "past_due", "unpaid", "paused", "canceled", "incomplete", "incomplete_expired"}

func (s *Server) stripeSubscriptions(w http.ResponseWriter, r *http.Request) {
	a, _, ok := s.stripeAuth(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, ok := stripeLimit(w, q, 10)
	if !ok {
		return
	}
	status := q.Get("status")
	if status != "" && status != "all" && status != "ended" && !slices.Contains(subscriptionStatuses, status) {
		stripeFail(w, http.StatusBadRequest, "invalid_request_error", "",
			"Invalid status: must be one of active, all, canceled, ended, incomplete, incomplete_expired, past_due, paused, trialing, or unpaid")
		return
	}
	customer := q.Get("customer")
	s.mu.Lock()
	type sub struct {
		customer string
		s        StripeSubscription
		live     bool
	}
	var subs []sub
	found := customer == ""
	for _, c := range a.customers {
		if customer != "" && c.c.ID != customer {
			continue
		}
		found = true
		for _, su := range c.subs {
			subs = append(subs, sub{c.c.ID, su, c.c.Livemode})
		}
	}
	s.mu.Unlock()
	if !found {
		stripeFail(w, http.StatusBadRequest, "invalid_request_error", "resource_missing", "No such customer: '"+customer+"'")
		return
	}
	subs = slices.DeleteFunc(subs, func(x sub) bool {
		switch status {
		case "all":
			return false
		case "":
			return x.s.Status == "canceled" || x.s.Status == "incomplete_expired"
		case "ended":
			return x.s.Status != "canceled" && x.s.Status != "incomplete_expired"
		}
		return x.s.Status != status
	})
	slices.SortStableFunc(subs, func(x, y sub) int { return y.s.Created.Compare(x.s.Created) })
	hasMore := len(subs) > limit
	subs = subs[:min(limit, len(subs))]
	data := []map[string]any{}
	for _, x := range subs {
		var nick any
		if x.s.PriceNickname != "" {
			nick = x.s.PriceNickname
		}
		price := map[string]any{"id": x.s.PriceID, "object": "price", "nickname": nick, "active": true, "currency": "usd", "livemode": x.live, "type": "recurring"}
		plan := map[string]any{"id": x.s.PriceID, "object": "plan", "nickname": nick, "active": true, "currency": "usd", "livemode": x.live}
		data = append(data, map[string]any{
			"id": x.s.ID, "object": "subscription", "customer": x.customer, "status": x.s.Status,
			"created": x.s.Created.Unix(), "livemode": x.live, "metadata": map[string]any{},
			"items": map[string]any{
				"object": "list", "has_more": false, "total_count": 1,
				"url": "/v1/subscription_items?subscription=" + x.s.ID,
				"data": []any{map[string]any{
					"id": "si_" + strings.TrimPrefix(x.s.ID, "sub_"), "object": "subscription_item",
					"price": price, "plan": plan, "quantity": 1, "subscription": x.s.ID,
				}},
			},
		})
	}
	stripeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": hasMore, "url": "/v1/subscriptions"})
}

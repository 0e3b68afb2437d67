// Package profilelookup finds a help desk customer's profile in a connected
// Shopify shop or Stripe account by email and describes it as a
// helpdeskflow.LinkedProfile that automation rules can read (for example
// customer.linked_profiles.shopify.data.orders_count).
//
// It is the API-client half of those integrations: the OAuth connection
// that produced the access token lives elsewhere. Lookup makes one attempt
// and never retries; a *LookupError says whether and when a retry can help
// (Class, Temporary, RetryAfter) and whether the connection must be
// reconnected (ClassUnauthorized).
//
// Both providers' search indexes are eventually consistent: a customer
// created in the shop or Stripe account a moment ago may not be found yet
// (Stripe documents up to about a minute), so a lookup right after the
// customer is created elsewhere can miss and is worth repeating later.
package profilelookup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/egress"
)

// Providers, as in Account.Provider and LinkedProfile.Provider.
const (
	ProviderShopify = "shopify"
	ProviderStripe  = "stripe"
)

// Defaults of the options.
const (
	DefaultShopifyAPIVersion = "2024-10"
	DefaultStripeBaseURL     = "https://api.stripe.com"
	// DefaultStripeAPIVersion is sent as Stripe-Version so the answers'
	// shapes do not depend on the connected account's default version.
	DefaultStripeAPIVersion = "2024-06-20"
)

// DefaultTimeout bounds each request of a Client whose http.Client has no
// timeout of its own (New with nil, or with a zero Timeout), so a provider
// that never answers cannot hold a lookup forever.
const DefaultTimeout = 10 * time.Second

// MaxResponseBytes bounds every response body Lookup reads; a longer one is
// a ClassBadResponse error.
const MaxResponseBytes = 4 << 20

// Account says where to look: the connection's account and its access token.
type Account struct {
	// Provider is ProviderShopify or ProviderStripe (case-insensitive).
	Provider string
	// Name is, for Shopify, the shop's myshopify.com subdomain ("acme" for
	// acme.myshopify.com; the full domain is accepted too). For Stripe it
	// is the connected account's id ("acct_…"), also sent as the
	// Stripe-Account header when it starts with "acct_" (the token alone
	// selects the account; other names only label errors).
	Name string
	// AccessToken is the connection's OAuth access token. It is sent only
	// to the provider's API host, never logged and never put in an error.
	AccessToken string
}

// Client looks customers up in Shopify and Stripe. It holds no per-call
// state and is safe for concurrent use.
type Client struct {
	hc             *http.Client
	shopifyBase    func(shop string) string
	shopifyVersion string
	stripeBase     string
	stripeVersion  string
}

// Option configures a Client.
type Option func(*Client)

// WithShopifyBaseURL sets how a shop's API base URL is built from its
// subdomain (default "https://"+shop+".myshopify.com").
func WithShopifyBaseURL(f func(shop string) string) Option {
	return func(c *Client) {
		if f != nil {
			c.shopifyBase = f
		}
	}
}

// WithStripeBaseURL sets Stripe's API base URL (default
// DefaultStripeBaseURL).
func WithStripeBaseURL(u string) Option {
	return func(c *Client) { c.stripeBase = strings.TrimRight(u, "/") }
}

// WithShopifyAPIVersion sets the Shopify Admin REST API version in the path
// (default DefaultShopifyAPIVersion).
func WithShopifyAPIVersion(v string) Option {
	return func(c *Client) { c.shopifyVersion = v }
}

// WithStripeAPIVersion sets the Stripe-Version header (default
// DefaultStripeAPIVersion; "" sends none, so the account's default applies).
func WithStripeAPIVersion(v string) Option {
	return func(c *Client) { c.stripeVersion = v }
}

// New returns a Client that sends requests with a copy of httpClient (nil:
// http.DefaultClient's transport) that does not follow redirects, so the
// access token never leaves the API host (a redirect is a
// ClassBadResponse error), and that gives up on a request after
// DefaultTimeout when httpClient sets no Timeout (a ClassTemporary error).
// Shop domains are user-given: in production httpClient's transport is
// the outbound address policy's (egress.Policy.Transport), and a host it
// refuses is a ClassBlockedAddress error.
func New(httpClient *http.Client, opts ...Option) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	hc := *httpClient
	if hc.Timeout <= 0 {
		hc.Timeout = DefaultTimeout
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{
		hc:             &hc,
		shopifyBase:    func(shop string) string { return "https://" + shop + ".myshopify.com" },
		shopifyVersion: DefaultShopifyAPIVersion,
		stripeBase:     DefaultStripeBaseURL,
		stripeVersion:  DefaultStripeAPIVersion,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Lookup finds the customer whose email equals email in the account and
// returns the linked profile, or ok=false (and a nil error) when there is
// none. Emails are compared normalized (helpdeskflow.NormalizeEmail:
// trimmed, lowercase); an email that is empty after normalizing finds
// nothing without a request.
//
// When several customers have the email:
//   - Shopify: the one with the most orders; ties go to the most recently
//     created, then to the highest id.
//   - Stripe: among the three most recently created (Checkout often creates
//     a new customer per purchase), the one whose best subscription ranks
//     highest; ties go to the most recently created. Subscription
//     statuses rank active > trialing > past_due > unpaid > paused >
//     canceled > incomplete > incomplete_expired > other > none. Each candidate costs one subscriptions request; the search
//     stops at the first with an active subscription.
//
// Search results are read for at most 4 pages (1,000 Shopify or 400 Stripe
// results); matches beyond that are not considered.
//
// Data holds JSON-native values only (string, bool, float64, []any) so a
// profile compares equal (reflect.DeepEqual) to itself after a JSON round
// trip through the event store:
//   - shopify: orders_count, total_spent (numbers), currency, state, tags
//     ([]any of strings, split from Shopify's comma-separated string),
//     created_at (RFC 3339, UTC), last_order_name (when there is one),
//     verified_email. URL https://admin.shopify.com/store/{shop}/customers/{id}.
//   - stripe: subscription_status, plan (when there is a subscription),
//     currency (when set), delinquent, balance (integer minor units as a
//     number), created (RFC 3339, UTC), livemode. URL
//     https://dashboard.stripe.com/customers/{id}, or
//     https://dashboard.stripe.com/test/customers/{id} in test mode.
//
// Every error is a *LookupError. Lookup makes each request once: it never
// retries, not even after a 429 or a 5xx; the caller decides (see
// LookupError.Temporary and RetryAfter). It stops when ctx ends.
func (c *Client) Lookup(ctx context.Context, a Account, email string) (p helpdeskflow.LinkedProfile, ok bool, err error) {
	provider := strings.ToLower(strings.TrimSpace(a.Provider))
	email = helpdeskflow.NormalizeEmail(email)
	switch provider {
	case ProviderShopify:
		shop, err := shopName(a.Name)
		o := &op{provider: provider, account: shop, token: a.AccessToken}
		if err != nil {
			o.account = a.Name
			return p, false, o.invalid(err.Error())
		}
		if err := checkToken(a.AccessToken); err != nil {
			return p, false, o.invalid(err.Error())
		}
		if email == "" {
			return p, false, nil
		}
		o.email = email
		return c.lookupShopify(ctx, o, email)
	case ProviderStripe:
		o := &op{provider: provider, account: strings.TrimSpace(a.Name), token: a.AccessToken}
		if strings.HasPrefix(o.account, "acct_") && !stripeAccountPattern.MatchString(o.account) {
			return p, false, o.invalid("malformed Stripe account id")
		}
		if err := checkToken(a.AccessToken); err != nil {
			return p, false, o.invalid(err.Error())
		}
		if email == "" {
			return p, false, nil
		}
		o.email = email
		return c.lookupStripe(ctx, o, email)
	}
	o := &op{provider: a.Provider, account: a.Name, token: a.AccessToken}
	return p, false, o.invalid("unknown provider")
}

var (
	shopPattern          = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,99}$`)
	stripeAccountPattern = regexp.MustCompile(`^acct_[A-Za-z0-9]{1,250}$`)
)

// shopName returns the shop's subdomain from a subdomain or a
// myshopify.com domain (with or without https://).
func shopName(name string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(name))
	s = strings.TrimPrefix(s, "https://")
	s = strings.TrimSuffix(s, "/")
	s = strings.TrimSuffix(s, ".myshopify.com")
	if !shopPattern.MatchString(s) {
		return "", errors.New("malformed shop name: want the myshopify.com subdomain, such as acme")
	}
	return s, nil
}

func checkToken(t string) error {
	if t == "" {
		return errors.New("no access token")
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] == 0x7f {
			return errors.New("malformed access token")
		}
	}
	return nil
}

// Error classes: LookupError.Class and Classify.
const (
	// ClassUnauthorized: the provider refused the token (revoked,
	// uninstalled app, missing scope) or the Account is unusable; the
	// connection must be reconnected. Do not retry.
	ClassUnauthorized = "unauthorized"
	// ClassNotAvailable: the shop is closed, frozen, locked or unknown
	// (Shopify 402, 403, 404, 423). Retry much later, if at all.
	ClassNotAvailable = "not_available"
	// ClassRateLimited: HTTP 429; retry after RetryAfter (0 when the
	// provider did not say).
	ClassRateLimited = "rate_limited"
	// ClassTemporary: a 5xx answer, a network error, a timeout or the
	// context ending; retry with backoff (after RetryAfter when set).
	ClassTemporary = "temporary"
	// ClassBadResponse: an answer Lookup does not understand: unparseable
	// or too large, a redirect, or an unexpected status (such as a 400).
	ClassBadResponse = "bad_response"
	// ClassBlockedAddress: the provider's host (a Shopify shop's domain is
	// user-given) is, or resolves to, an address the outbound address
	// policy refuses (egress.ErrBlockedAddress); nothing was sent. Do not
	// retry.
	ClassBlockedAddress = "blocked_address"
)

// LookupError is the error of a Lookup. Its text names the provider, the
// account and the step that failed; it never contains the access token
// (token-like strings in the provider's message are replaced too) nor the
// email looked up.
type LookupError struct {
	Provider string
	// Account is the shop subdomain or the Stripe account id.
	Account string
	// Step is what failed: "check account", "search customers" or "list
	// subscriptions".
	Step string
	// Status is the HTTP status answered, 0 when there was no answer.
	Status int
	// Class is one of the Class* constants.
	Class string
	// RetryAfter is the provider's Retry-After (seconds, possibly
	// fractional such as "2.0", or an HTTP date), 0 when absent.
	RetryAfter time.Duration
	// RequestID is the provider's request id (Stripe's Request-Id,
	// Shopify's X-Request-Id), for support tickets.
	RequestID string
	// Message is the provider's error message (or what was wrong).
	Message string
	// Err is the cause, if any: a transport error (its URL without the
	// query), ctx.Err(), a JSON error.
	Err error
}

// Error implements the error interface.
func (e *LookupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "profilelookup: %s account %q: %s: %s", e.Provider, e.Account, e.Step, e.Class)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *LookupError) Unwrap() error { return e.Err }

// Temporary reports whether retrying later can help: ClassRateLimited and
// ClassTemporary.
func (e *LookupError) Temporary() bool {
	return e.Class == ClassRateLimited || e.Class == ClassTemporary
}

// Classify returns the class of the first *LookupError in err's chain, ""
// for nil. For other errors: ClassTemporary for a context or network
// error, otherwise ClassBadResponse.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var le *LookupError
	if errors.As(err, &le) {
		return le.Class
	}
	var ne net.Error
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) {
		return ClassTemporary
	}
	return ClassBadResponse
}

// op is one Lookup: who is asked, and the token to keep out of errors.
type op struct {
	provider, account, token string
	// email is the normalized email looked up, kept out of errors too
	// (Stripe echoes the query in some messages).
	email string
}

func (o *op) fail(step string, status int, class, msg string, cause error) *LookupError {
	return &LookupError{
		Provider: o.provider, Account: o.account, Step: step, Status: status,
		Class: class, Message: o.scrub(msg), Err: cause,
	}
}

func (o *op) invalid(msg string) *LookupError {
	return o.fail("check account", 0, ClassUnauthorized, "invalid account: "+msg, nil)
}

// tokenLike matches Stripe keys (also masked ones, as in Stripe's "Invalid
// API Key provided: sk_test_****1234") and Shopify tokens.
var tokenLike = regexp.MustCompile(`\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9*]+|\bshp(?:at|ca|ss|pa|ua)_[A-Za-z0-9*]+`)

const maxMessageLen = 300

// scrub removes the access token, token-like strings and the email from a
// message and keeps it to one short line.
func (o *op) scrub(s string) string {
	if o.token != "" {
		s = strings.ReplaceAll(s, o.token, "[redacted]")
	}
	if o.email != "" {
		s = regexp.MustCompile(`(?i)`+regexp.QuoteMeta(o.email)).ReplaceAllString(s, "[email]")
	}
	s = tokenLike.ReplaceAllString(s, "[redacted]")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && s[cut]&0xc0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// errorInfo is what a provider's error answer means.
type errorInfo struct {
	class, message string
}

// get sends one GET and returns the body of a 2xx answer. Any other
// outcome is a *LookupError built with classify for non-2xx statuses.
func (c *Client) get(ctx context.Context, o *op, step, rawURL string, header http.Header,
	classify func(status int, body []byte) errorInfo) ([]byte, http.Header, *LookupError) {
	if err := ctx.Err(); err != nil {
		return nil, nil, o.fail(step, 0, ClassTemporary, "context ended", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, o.fail(step, 0, ClassBadResponse, "cannot build the request URL", stripQuery(err))
	}
	req.Header = header
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, o.transport(ctx, step, "request failed", err)
	}
	defer resp.Body.Close()
	requestID := resp.Header.Get("Request-Id")
	if requestID == "" {
		requestID = resp.Header.Get("X-Request-Id")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		le := o.transport(ctx, step, "reading the response failed", err)
		le.Status, le.RequestID = resp.StatusCode, requestID
		return nil, nil, le
	}
	fail := func(class, msg string) *LookupError {
		le := o.fail(step, resp.StatusCode, class, msg, nil)
		le.RequestID = requestID
		return le
	}
	if len(body) > MaxResponseBytes {
		return nil, nil, fail(ClassBadResponse, fmt.Sprintf("response larger than %d bytes", MaxResponseBytes))
	}
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return body, resp.Header, nil
	case s >= 300 && s < 400:
		host := ""
		if u, err := url.Parse(resp.Header.Get("Location")); err == nil {
			host = u.Host
		}
		return nil, nil, fail(ClassBadResponse, fmt.Sprintf("unexpected redirect to host %q (not followed)", host))
	}
	info := classify(resp.StatusCode, body)
	le := fail(info.class, info.message)
	if info.class == ClassRateLimited || info.class == ClassTemporary {
		le.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return nil, nil, le
}

// transport builds the error of a request that got no (complete) answer.
func (o *op) transport(ctx context.Context, step, msg string, err error) *LookupError {
	if cerr := ctx.Err(); cerr != nil {
		return o.fail(step, 0, ClassTemporary, msg+": context ended", cerr)
	}
	if errors.Is(err, egress.ErrBlockedAddress) {
		return o.fail(step, 0, ClassBlockedAddress, msg+": the host is not one HelpDeskFlow connects to", stripQuery(err))
	}
	return o.fail(step, 0, ClassTemporary, msg, stripQuery(err))
}

// stripQuery drops the query (the customer's email) from a *url.Error's
// URL, keeping the rest of the chain.
func stripQuery(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u := ue.URL
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
}

// maxRetryAfter caps a Retry-After so a broken header cannot park a job
// for days.
const maxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After header: delay seconds, possibly
// fractional ("2.0", as Shopify sends), or an HTTP date. Missing or
// unparseable: 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f != f || f <= 0 {
			return 0
		}
		if f > maxRetryAfter.Seconds() {
			return maxRetryAfter
		}
		d = time.Duration(f * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// decode unmarshals a successful answer, failing with ClassBadResponse.
func (o *op) decode(step string, body []byte, v any) *LookupError {
	if err := json.Unmarshal(body, v); err != nil {
		return o.fail(step, http.StatusOK, ClassBadResponse, "unparseable response", err)
	}
	return nil
}

// rfc3339 reformats a timestamp in UTC; one it cannot parse is kept as is.
func rfc3339(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}

package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/client"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

// script is a 127.0.0.1 server answering the requests it gets with the
// scripted answers in turn (the last one from then on), recording each
// request's method and Idempotency-Key.
type script struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	keys    []string
	methods []string
}

func newScript(t *testing.T, answers ...func(w http.ResponseWriter)) *script {
	s := &script{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.keys)
		s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
		s.methods = append(s.methods, r.Method)
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer hdf_test" {
			w.WriteHeader(401)
			return
		}
		s.answers[min(n, len(s.answers)-1)](w)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *script) requests() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.methods...), append([]string(nil), s.keys...)
}

func status(code int, retryAfter string, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_header")
		w.WriteHeader(code)
		w.Write([]byte(body)) //nolint:errcheck // test server
	}
}

const ticketJSON = `{"id": "6f1c8a4e-1d7b-4f0e-9a53-2b8f4c1e9d70", "subject": "Hi", "status": "new", "priority": "normal",
	"tags": [], "custom_fields": {}, "version": 1, "created_at": "2026-01-02T03:04:05.000Z", "updated_at": "2026-01-02T03:04:05.000Z"}`

// newClient returns a client of s that records its waits instead of
// waiting.
func newClient(t *testing.T, url string, opts ...client.Option) (*client.Client, *[]time.Duration) {
	t.Helper()
	c, err := client.New(url, "hdf_test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	var mu sync.Mutex
	client.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	})
	return c, &waits
}

// A 429 is retried after its Retry-After, a 503 with backoff, and every
// attempt of the one call carries the same Idempotency-Key.
func TestRetries_RateLimitedThenUnavailable(t *testing.T) {
	s := newScript(t,
		status(429, "7", `{"error": {"code": "rate_limited", "message": "slow down", "request_id": "req_1"}}`),
		status(503, "", `{"error": {"code": "unavailable", "message": "later", "request_id": "req_2"}}`),
		status(201, "", ticketJSON))
	c, waits := newClient(t, s.srv.URL, client.WithBackoff(100*time.Millisecond, time.Second))
	tk, w, err := c.CreateTicket(context.Background(), client.TicketCreate{Subject: "Hi", Customer: client.TicketCustomer{Email: "a@example.com"},
		Message: client.TicketMessage{Body: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Subject != "Hi" || !w.Created {
		t.Errorf("ticket %+v, written %+v", tk, w)
	}
	methods, keys := s.requests()
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Fatalf("Idempotency-Keys of the attempts: %q, want one key three times", keys)
	}
	if methods[0] != "POST" {
		t.Errorf("method %s", methods[0])
	}
	if len(*waits) != 2 || (*waits)[0] != 7*time.Second || (*waits)[1] < 100*time.Millisecond || (*waits)[1] > 200*time.Millisecond {
		t.Errorf("waits %v, want the Retry-After (7s), then the second retry's backoff, 100 to 200 ms", *waits)
	}

	// A second call is another logical call: a new key.
	if _, _, err := c.CreateTicket(context.Background(), client.TicketCreate{Subject: "Hi"}); err != nil {
		t.Fatal(err)
	}
	if _, keys := s.requests(); keys[3] == keys[0] {
		t.Error("a new call reused the previous call's Idempotency-Key")
	}
}

// A 429 without Retry-After waits the backoff, not nothing.
func TestRetries_RateLimitedWithoutRetryAfter(t *testing.T) {
	s := newScript(t, status(429, "", `{"error": {"code": "rate_limited", "message": "slow down", "request_id": "req_1"}}`), status(200, "", ticketJSON))
	c, waits := newClient(t, s.srv.URL, client.WithBackoff(100*time.Millisecond, time.Second))
	if _, err := c.GetTicket(context.Background(), "x", false); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 || (*waits)[0] < 50*time.Millisecond || (*waits)[0] > 100*time.Millisecond {
		t.Errorf("waits %v, want one backoff of 50 to 100 ms", *waits)
	}
}

// Attempts are bounded: the last answer comes back as *client.Error with
// the code, message, details and request id the API sent. GETs carry no
// Idempotency-Key.
func TestRetries_Bounded(t *testing.T) {
	s := newScript(t, status(500, "", `{"error": {"code": "internal", "message": "boom", "details": [{"field": "x", "problem": "y"}], "request_id": "req_9"}}`))
	c, waits := newClient(t, s.srv.URL, client.WithMaxAttempts(3))
	_, err := c.GetTicket(context.Background(), "6f1c8a4e-1d7b-4f0e-9a53-2b8f4c1e9d70", false)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 500 || e.Code != "internal" || e.Message != "boom" || e.RequestID != "req_9" ||
		len(e.Details) != 1 || e.Details[0].Field != "x" {
		t.Fatalf("error %#v", err)
	}
	methods, keys := s.requests()
	if len(methods) != 3 || len(*waits) != 2 {
		t.Fatalf("%d attempts, %d waits; want 3 and 2", len(methods), len(*waits))
	}
	for i, k := range keys {
		if k != "" || methods[i] != "GET" {
			t.Errorf("attempt %d: %s with Idempotency-Key %q", i, methods[i], k)
		}
	}
}

// Errors that a retry cannot fix are not retried.
func TestRetries_NotForClientErrors(t *testing.T) {
	s := newScript(t, status(409, "", `{"error": {"code": "conflict", "message": "taken", "existing_id": "6f1c8a4e-1d7b-4f0e-9a53-2b8f4c1e9d70", "request_id": "req_3"}}`))
	c, _ := newClient(t, s.srv.URL)
	_, _, err := c.CreateTicket(context.Background(), client.TicketCreate{Subject: "Hi"})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != "conflict" || e.ExistingID != "6f1c8a4e-1d7b-4f0e-9a53-2b8f4c1e9d70" {
		t.Fatalf("error %#v", err)
	}
	if methods, _ := s.requests(); len(methods) != 1 {
		t.Errorf("%d attempts of a 409, want 1", len(methods))
	}
}

// A connection error is retried; a cancelled context ends the call.
func TestRetries_ConnectionErrorsAndContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	c, waits := newClient(t, "http://"+addr, client.WithMaxAttempts(3))
	_, err = c.GetCustomer(context.Background(), "x")
	if err == nil || len(*waits) != 2 {
		t.Fatalf("err %v after %d waits, want an error after 2", err, len(*waits))
	}

	ctx, cancel := context.WithCancel(context.Background())
	c2, err := client.New("http://"+addr, "hdf_test", client.WithMaxAttempts(100))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	client.SetSleep(c2, func(ctx context.Context, d time.Duration) error {
		if calls++; calls == 2 {
			cancel()
		}
		return ctx.Err()
	})
	if _, err := c2.GetCustomer(ctx, "x"); !errors.Is(err, context.Canceled) || calls != 2 {
		t.Fatalf("err %v after %d waits, want context.Canceled after 2", err, calls)
	}
}

// Every request has the http.Client's timeout.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c, _ := newClient(t, srv.URL, client.WithTimeout(50*time.Millisecond), client.WithMaxAttempts(1))
	var ne net.Error
	if _, err := c.GetCustomer(context.Background(), "x"); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
}

func TestNew_RefusesABadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "localhost:8080", "http://"} {
		if _, err := client.New(u, "k"); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

// TestReadWebhook_StandardWebhooks: a delivery with the Standard Webhooks
// headers is verified by them (the spec's test vector, then a signature
// of the wrong secret and a changed body refused); one with only
// X-HDF-Signature by that.
func TestReadWebhook_StandardWebhooks(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	request := func(body []byte, h map[string]string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	signed := time.Now()
	std := map[string]string{
		"webhook-id":        "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp": strconv.FormatInt(signed.Unix(), 10),
		"webhook-signature": webhook.SignStandard([]string{secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", signed, body),
	}
	if got, err := client.ReadWebhook(request(body, std), secret, 1<<10); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Standard Webhooks delivery: %q, %v", got, err)
	}
	if err := client.VerifyStandardWebhook(request(body, std).Header, body, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another key")), signed); !errors.Is(err, webhook.ErrNoMatchingSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := client.ReadWebhook(request(append(body, ' '), std), secret, 1<<10); !errors.Is(err, webhook.ErrNoMatchingSignature) {
		t.Errorf("changed body: %v", err)
	}
	// The spec's vector, at its own time.
	vector := map[string]string{"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
		"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
	if err := client.VerifyStandardWebhook(request(body, vector).Header, body, secret, time.Unix(1614265330, 0)); err != nil {
		t.Errorf("the spec's test vector: %v", err)
	}
	hdf := map[string]string{"X-HDF-Signature": webhook.Sign([]string{secret}, signed, body)}
	if _, err := client.ReadWebhook(request(body, hdf), secret, 1<<10); err != nil {
		t.Errorf("X-HDF-Signature only: %v", err)
	}
}

func TestVerifyWebhook(t *testing.T) {
	body := []byte(`{"id":"e1","type":"ticket.created"}`)
	now := time.Now()
	header := webhook.Sign([]string{"whsec_abc"}, now, body)
	if err := client.VerifyWebhook(header, body, "whsec_abc", now); err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyWebhook(header, body, "whsec_other", now); !errors.Is(err, webhook.ErrNoMatchingSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	if err := client.VerifyWebhook(header, append(body, ' '), "whsec_abc", now); !errors.Is(err, webhook.ErrNoMatchingSignature) {
		t.Errorf("changed body: %v", err)
	}
}

package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/http"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/relay"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
)

// loadOpenAPI loads the served document and validates it as OpenAPI 3.1
// (kin-openapi picks JSON Schema 2020-12 from its "openapi" field).
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(http.OpenAPIDocument())
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

func TestOpenAPI_DocumentIsValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if got, want := doc.OpenAPI, "3.1.0"; got != want {
		t.Errorf("openapi %q, want %q", got, want)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Error("kin-openapi does not treat the document as OpenAPI 3.1")
	}
	// OpenAPI 3.0's nullable means nothing in 3.1 (kin-openapi ignores it
	// there): null must be in the type, as in "type": ["string", "null"].
	var raw any
	if err := json.Unmarshal(http.OpenAPIDocument(), &raw); err != nil {
		t.Fatal(err)
	}
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				if k == "nullable" {
					t.Errorf("%s: nullable is OpenAPI 3.0; put \"null\" in the type instead", at)
				}
				walk(at+"/"+k, sub)
			}
		case []any:
			for i, sub := range v {
				walk(fmt.Sprintf("%s/%d", at, i), sub)
			}
		}
	}
	walk("#", raw)
}

// openAPIPath turns a route pattern (/v1/tickets/:id) into an OpenAPI path
// template (/v1/tickets/{id}).
var routeParam = regexp.MustCompile(`:([A-Za-z_]+)`)

func openAPIPath(routePath string) string { return routeParam.ReplaceAllString(routePath, "{$1}") }

// TestOpenAPI_DocumentsEveryRoute compares the route table with the
// document both ways, and checks what every operation must say given its
// route: public routes need no key, authenticated ones document 401 and
// 429 (and the rate-limit headers on their answers), admin ones 403,
// routes with an id 404, POST and PATCH the Idempotency-Key and its 422.
// A new route fails this test until it is documented.
func TestOpenAPI_DocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	server := newHarness(t).server
	inTable := map[string]http.RouteInfo{}
	for _, rt := range server.Routes() {
		inTable[rt.Method+" "+openAPIPath(rt.Path)] = rt
	}
	inDoc := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			inDoc[method+" "+path] = op
		}
	}
	for name := range inTable {
		if inDoc[name] == nil {
			t.Errorf("route %s is not in openapi.json: document it", name)
		}
	}
	for name := range inDoc {
		if _, ok := inTable[name]; !ok {
			t.Errorf("openapi.json documents %s, which no route serves", name)
		}
	}

	for name, rt := range inTable {
		op := inDoc[name]
		if op == nil {
			continue
		}
		has := func(status int) bool { return op.Responses.Status(status) != nil }
		if op.Responses.Default() != nil {
			t.Errorf("%s: has a default response; document each status instead", name)
		}
		if rt.Public {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s is public: its operation needs security: []", name)
			}
			continue
		}
		if op.Security != nil {
			t.Errorf("%s needs a key: it must keep the document's bearer security", name)
		}
		for _, status := range []int{400, 401, 429, 500, 503} {
			if !has(status) {
				t.Errorf("%s: every authenticated route can answer %d; document it", name, status)
			}
		}
		if rt.Admin && !has(403) {
			t.Errorf("%s needs an admin key: document 403", name)
		}
		if rt.IDKind != "" && !has(404) {
			t.Errorf("%s has an id: document 404", name)
		}
		// PATCH and PUT always take a body; a POST may be a body-less
		// action (revalidate, redeliver).
		if (rt.Method == "PATCH" || rt.Method == "PUT") && (op.RequestBody == nil || !op.RequestBody.Value.Required) {
			t.Errorf("%s: document its required request body", name)
		}
		if op.RequestBody != nil && !has(413) {
			t.Errorf("%s takes a body: document 413", name)
		}
		if rt.Method == "POST" || rt.Method == "PATCH" {
			if op.Parameters.GetByInAndName("header", "Idempotency-Key") == nil {
				t.Errorf("%s: document the Idempotency-Key header", name)
			}
			if !has(409) || !has(422) {
				t.Errorf("%s: document 409 (idempotency_key_in_use) and 422 (idempotency_key_reused)", name)
			}
		}
		for code, resp := range op.Responses.Map() {
			if !strings.HasPrefix(code, "2") {
				continue
			}
			for _, h := range []string{"X-Request-Id", "RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
				if hdr := resp.Value.Headers[h]; hdr == nil || !hdr.Value.Required {
					t.Errorf("%s %s: document the required %s header", name, code, h)
				}
			}
		}
	}
}

// contract sends requests to a harness and checks each exchange against
// the OpenAPI document: the request (so the document describes what
// clients send) and the response, status, headers and body.
type contract struct {
	t      *testing.T
	h      *harness
	router routers.Router
	opts   *openapi3filter.Options

	mu   *sync.Mutex
	seen map[string]map[int]bool // "METHOD /path/{id}" → statuses validated, under mu
}

// closeResponseSchemas sets additionalProperties: false on every object
// schema of a response that lists its properties and says nothing about
// others. The document leaves answers open, since fields may be added;
// the tests close them, so that a field the handlers send and the
// document does not describe fails.
func closeResponseSchemas(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(ref *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			closed := false
			s.AdditionalProperties.Has = &closed
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, list := range []openapi3.SchemaRefs{s.AnyOf, s.OneOf, s.AllOf} {
			for _, sub := range list {
				walk(sub)
			}
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				for _, mt := range resp.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

var uuidFormat = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func newContract(t *testing.T, h *harness) *contract {
	doc := loadOpenAPI(t)
	closeResponseSchemas(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true, // a status the document does not list fails
		MultiError:            true, // every problem, not just the first
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			scheme, key, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
			if !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(key, helpdeskflow.APIKeyPrefix) {
				return errors.New("no Authorization: Bearer hdf_… header")
			}
			return nil
		},
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(uuidFormat.String())),
			openapi3.WithStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail)),
			openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
				if u, err := url.Parse(s); err != nil || u.Scheme == "" {
					return fmt.Errorf("not an absolute URI: %q", s)
				}
				return nil
			})),
			openapi3.WithStringFormatValidator("uri-reference", openapi3.NewCallbackValidator(func(s string) error {
				_, err := url.Parse(s)
				return err
			})),
		},
	}
	return &contract{t: t, h: h, router: router, opts: opts, mu: &sync.Mutex{}, seen: map[string]map[int]bool{}}
}

// on returns a contract for another harness (server), sharing what was
// seen.
func (c *contract) on(h *harness) *contract {
	return &contract{t: c.t, h: h, router: c.router, opts: c.opts, mu: c.mu, seen: c.seen}
}

// do sends a request the document allows (ValidateRequest must accept it)
// and validates its response; key is sent as Bearer unless empty, headers
// are name, value pairs.
func (c *contract) do(method, path, key string, body any, headers ...string) response {
	c.t.Helper()
	return c.exchange(true, "", method, path, key, body, headers...)
}

// doKnownMismatch is do for an exchange whose response is known to break
// the document (a handler bug, named by bug): the mismatch must be there,
// with mismatch in its message. When the handler is fixed, the test says
// so, and the exchange moves to do.
func (c *contract) doKnownMismatch(bug, mismatch, method, path, key string, body any, headers ...string) response {
	c.t.Helper()
	return c.exchange(true, bug+"\x00"+mismatch, method, path, key, body, headers...)
}

// doInvalid sends a request the document forbids (ValidateRequest must
// refuse it: the document and the server agree it is wrong) and validates
// the server's refusal.
func (c *contract) doInvalid(method, path, key string, body any, headers ...string) response {
	c.t.Helper()
	return c.exchange(false, "", method, path, key, body, headers...)
}

func (c *contract) exchange(valid bool, knownMismatch, method, path, key string, body any, headers ...string) response {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
	}
	newRequest := func() *nethttp.Request {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(raw)
		}
		req, err := nethttp.NewRequest(method, c.h.url+path, rd)
		if err != nil {
			c.t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Add(headers[i], headers[i+1])
		}
		return req
	}
	name := method + " " + path

	// The request, as the document sees it. Validation may set defaults
	// in the body it reads, so it gets its own copy of the request.
	vreq := newRequest()
	route, pathParams, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatalf("%s: no operation of openapi.json matches: %v", name, err)
	}
	reqInput := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: pathParams, Route: route, Options: c.opts}
	reqErr := openapi3filter.ValidateRequest(context.Background(), reqInput)
	switch {
	case valid && reqErr != nil:
		c.t.Errorf("%s: the request does not match openapi.json:\n%v\nbody: %s", name, reqErr, clip(raw))
	case !valid && reqErr == nil:
		c.t.Errorf("%s: openapi.json accepts this request, but it is meant to be one the document forbids: %s", name, clip(raw))
	}

	resp, err := nethttp.DefaultClient.Do(newRequest())
	if err != nil {
		c.t.Fatal(err)
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	respInput := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(respBody)), Options: c.opts,
	}
	respErr := openapi3filter.ValidateResponse(context.Background(), respInput)
	bug, mismatch, _ := strings.Cut(knownMismatch, "\x00")
	switch {
	case bug == "" && respErr != nil:
		c.t.Errorf("%s → %d: the response does not match openapi.json (%s %s):\n%v\nheaders: %v\nbody: %s",
			name, resp.StatusCode, route.Method, route.Path, respErr, resp.Header, clip(respBody))
	case bug != "" && (respErr == nil || !strings.Contains(respErr.Error(), mismatch)):
		c.t.Errorf("%s → %d: expected the known mismatch (%s) with %q, got: %v\nIf the handler was fixed, validate this exchange with do.",
			name, resp.StatusCode, bug, mismatch, respErr)
	}
	c.mu.Lock()
	op := route.Method + " " + route.Path
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][resp.StatusCode] = true
	c.mu.Unlock()

	out := response{status: resp.StatusCode, header: resp.Header, raw: string(respBody)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(respBody) > 0 {
		if err := json.Unmarshal(respBody, &out.body); err != nil {
			c.t.Fatalf("%s: body is not JSON: %s", name, clip(respBody))
		}
	}
	return out
}

func clip(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return string(b)
}

// want fails the test unless r has status (and, for errors, code).
func (c *contract) want(r response, status int, code string) {
	c.t.Helper()
	if r.status != status || r.errorCode() != code {
		c.t.Fatalf("got %d %q, want %d %q: %s", r.status, r.errorCode(), status, code, r.raw)
	}
}

// TestOpenAPI_ResponsesMatchTheDocument drives a realistic session through
// every route, successes and failures, and validates every request and
// response against openapi.json.
func TestOpenAPI_ResponsesMatchTheDocument(t *testing.T) {
	h := newHarness(t)
	c := newContract(t, h)
	admin := h.adminKey

	// Public routes.
	c.want(c.do("GET", "/healthz", "", nil), 200, "")
	c.want(c.do("GET", "/readyz", "", nil), 200, "")
	c.want(c.do("GET", "/metrics", "", nil), 200, "")
	r := c.do("GET", "/v1/openapi.json", "", nil)
	c.want(r, 200, "")
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("openapi.json Content-Type %q, want application/json", got)
	}
	if got := r.header.Get("Cache-Control"); !strings.Contains(got, "max-age=") {
		t.Errorf("openapi.json Cache-Control %q, want a max-age", got)
	}
	if r.raw != string(http.OpenAPIDocument()) || r.header.Get("X-RateLimit-Limit") != "" {
		t.Errorf("openapi.json is not served as embedded, or is rate limited: %v", r.header)
	}
	c.want(c.do("GET", "/healthz?api_key="+admin, "", nil), 400, "key_in_wrong_place")

	// Tickets.
	ticket := map[string]any{
		"subject": "Refund for order 1042", "customer": map[string]any{"email": "Ada@Example.com", "name": "Ada Lovelace"},
		"message": map[string]any{"body": "<p>My order arrived <b>broken</b>.</p>"}, "priority": "high", "tags": []string{"refund"},
		"custom_fields": map[string]any{"order": 1042, "gift": false, "note": nil}, "external_id": "zd-1",
	}
	r = c.do("POST", "/v1/tickets", admin, ticket, "Idempotency-Key", "create-1")
	c.want(r, 201, "")
	id := r.body["id"].(string)
	customerID := r.body["customer_id"].(string)
	path := "/v1/tickets/" + id
	c.want(c.do("POST", "/v1/tickets", admin, ticket, "Idempotency-Key", "create-1"), 201, "")
	c.want(c.do("POST", "/v1/tickets", admin, ticketBody("other"), "Idempotency-Key", "create-1"), 422, "idempotency_key_reused")
	c.want(c.doInvalid("POST", "/v1/tickets", admin, ticketBody("x"), "Idempotency-Key", strings.Repeat("k", 256)), 400, "validation_failed")
	c.want(c.doInvalid("POST", "/v1/tickets", admin, map[string]any{"customer": map[string]any{"email": "nope"}, "message": map[string]any{"body": ""}, "priority": "critical"}), 400, "validation_failed")
	c.want(c.doInvalid("POST", "/v1/tickets", admin, `{"subject": "s",`), 400, "invalid_json")
	c.want(c.doInvalid("POST", "/v1/tickets", admin, map[string]any{"api_key": admin, "subject": "s"}), 400, "key_in_wrong_place")
	big := ticketBody("big")
	big["message"] = map[string]any{"body": strings.Repeat("a", http.MaxBodyBytes)}
	c.want(c.doInvalid("POST", "/v1/tickets", admin, big), 413, "payload_too_large")

	c.want(c.do("GET", path, admin, nil), 200, "")
	c.want(c.do("GET", path+"?include_internal=true", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/tickets/"+uuid.NewString(), admin, nil), 404, "not_found")
	c.want(c.doInvalid("GET", "/v1/tickets/not-a-uuid", admin, nil), 404, "not_found")
	c.want(c.doInvalid("GET", path+"?include_internal=maybe", admin, nil), 400, "validation_failed")

	r = c.do("PATCH", path, admin, map[string]any{"status": "open", "assignee_id": "agent-7", "team": "billing", "tags_add": []string{"vip"},
		"custom_fields": map[string]any{"gift": true}}, "If-Match", `"1"`, "Idempotency-Key", "patch-1")
	c.want(r, 200, "")
	c.want(c.do("PATCH", path, admin, map[string]any{"priority": "low"}, "If-Match", `"1"`), 412, "precondition_failed")
	c.want(c.doInvalid("PATCH", path, admin, map[string]any{"priority": "low"}, "If-Match", `"one"`), 400, "validation_failed")
	c.want(c.doInvalid("PATCH", path, admin, map[string]any{"priorty": "low"}), 400, "validation_failed")
	c.want(c.do("PATCH", path, admin, map[string]any{"status": "new"}), 400, "validation_failed") // the lifecycle, not the schema
	c.want(c.do("PATCH", path, admin, map[string]any{"assignee_id": nil, "team": nil}), 200, "")
	fifty := make([]string, 50)
	for i := range fifty {
		fifty[i] = fmt.Sprintf("tag-%d", i)
	}
	c.want(c.do("PATCH", path, admin, map[string]any{"tags_add": fifty}), 422, "limit_exceeded") // 2 + 50 tags
	c.want(c.do("PATCH", "/v1/tickets/"+uuid.NewString(), admin, map[string]any{"priority": "low"}), 404, "not_found")

	c.want(c.do("POST", path+"/messages", admin, map[string]any{"body": "We are sending a new one.", "author_type": "agent"}), 201, "")
	c.want(c.do("POST", path+"/messages", admin, map[string]any{"body": "Customer is a VIP.", "internal": true}), 201, "")
	c.want(c.do("POST", path+"/messages", admin, map[string]any{"body": "Thanks!", "author_type": "customer"}, "Idempotency-Key", "msg-1"), 201, "")
	c.want(c.do("POST", path+"/messages", admin, map[string]any{"body": "Thanks!", "author_type": "customer"}, "Idempotency-Key", "msg-1"), 201, "")
	c.want(c.doInvalid("POST", path+"/messages", admin, map[string]any{"body": "x", "author_type": "bot"}), 400, "validation_failed")
	c.want(c.do("POST", "/v1/tickets/"+uuid.NewString()+"/messages", admin, map[string]any{"body": "x"}), 404, "not_found")

	c.want(c.do("GET", path+"/audit", admin, nil), 200, "")
	c.want(c.do("GET", path+"/audit?include_internal=true", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/tickets/"+uuid.NewString()+"/audit", admin, nil), 404, "not_found")
	c.want(c.do("GET", path+"/audit?from_version=2&to_version=3", admin, nil), 200, "")
	c.want(c.do("GET", path+"/audit?from_version=3&to_version=2", admin, nil), 400, "validation_failed")
	c.want(c.doInvalid("GET", path+"/audit?from_version=0", admin, nil), 400, "validation_failed")

	// Point in time.
	c.want(c.do("GET", path+"?as_of=2&include_internal=true", admin, nil), 200, "")
	c.want(c.do("GET", path+"?as_of="+url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano)), admin, nil), 200, "")
	c.want(c.do("GET", path+"?as_of=2001-01-01T00:00:00.000Z", admin, nil), 404, "not_found")
	c.want(c.do("GET", path+"?as_of=999", admin, nil), 400, "validation_failed")
	c.want(c.do("GET", path+"?as_of="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), admin, nil), 400, "validation_failed")
	c.want(c.doInvalid("GET", path+"?as_of=yesterday", admin, nil), 400, "validation_failed")

	c.want(c.do("GET", "/v1/tickets", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/tickets?status=open&priority=high&tag=refund&team=billing&customer_id="+customerID+"&updated_after=2026-01-01T00:00:00.000Z&limit=10", admin, nil), 200, "")
	c.want(c.doInvalid("GET", "/v1/tickets?limit=0", admin, nil), 400, "validation_failed")
	c.want(c.do("GET", "/v1/tickets?cursor=nonsense", admin, nil), 400, "validation_failed")

	// The change feed.
	r = c.do("GET", "/v1/events", admin, nil)
	c.want(r, 200, "")
	next := r.body["next_cursor"].(string)
	c.want(c.do("GET", "/v1/events?limit=2", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/events?after="+next, admin, nil), 200, "")
	c.want(c.doInvalid("GET", "/v1/events?after=garbage", admin, nil), 400, "validation_failed")
	c.want(c.doInvalid("GET", "/v1/events?limit=1001", admin, nil), 400, "validation_failed")

	// Customers.
	customer := map[string]any{
		"email": " Grace@Example.com ", "name": "Grace Hopper", "tags": []string{"vip"},
		"custom_fields": map[string]any{"tier": "gold", "seats": 12}, "metadata": map[string]any{"crm": map[string]any{"owner": "sam"}},
		"linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "c-1", "url": "https://shop.example/c/1", "data": map[string]any{"orders": 3}}},
	}
	r = c.do("POST", "/v1/customers", admin, customer, "Idempotency-Key", "cust-1")
	c.want(r, 201, "")
	grace := r.body["id"].(string)
	c.want(c.do("POST", "/v1/customers", admin, customer, "Idempotency-Key", "cust-1"), 201, "")
	c.want(c.do("POST", "/v1/customers", admin, map[string]any{"email": "grace@example.com", "tags": []string{"beta"}}), 200, "")
	c.want(c.do("POST", "/v1/customers", admin, map[string]any{"email": "other@example.com",
		"linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "c-1"}}}), 409, "conflict")
	c.want(c.doInvalid("POST", "/v1/customers", admin, map[string]any{"name": "no email", "linked_profiles": []any{map[string]any{"provider": "Not Valid!"}}}), 400, "validation_failed")
	var large []any // 20 profiles of 16 KB: over the customer's 128 KiB total
	for i := range 20 {
		large = append(large, map[string]any{"provider": "stripe", "external_id": fmt.Sprintf("big-%d", i), "data": map[string]any{"notes": strings.Repeat("x", 16_000)}})
	}
	c.want(c.do("POST", "/v1/customers", admin, map[string]any{"email": "big@example.com", "linked_profiles": large}), 422, "limit_exceeded")
	c.want(c.do("GET", "/v1/customers/"+grace, admin, nil), 200, "")
	c.want(c.do("GET", "/v1/customers/"+uuid.NewString(), admin, nil), 404, "not_found")
	c.want(c.do("GET", "/v1/customers/"+grace+"?as_of=1", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/customers/"+grace+"?as_of=2001-01-01T00:00:00Z", admin, nil), 404, "not_found")
	c.want(c.do("GET", "/v1/customers/"+grace+"?as_of=999", admin, nil), 400, "validation_failed")
	c.want(c.doInvalid("GET", "/v1/customers/"+grace+"?as_of=0", admin, nil), 400, "validation_failed")
	c.want(c.do("GET", "/v1/customers?email=GRACE@example.com", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/customers?email=nobody@example.com", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/customers?provider=shopify&external_id=c-1", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/customers?provider=shopify", admin, nil), 400, "validation_failed")
	c.want(c.do("GET", "/v1/customers?tag=vip&limit=10", admin, nil), 200, "")
	r = c.do("PATCH", "/v1/customers/"+grace, admin, map[string]any{"name": "Rear Admiral Grace Hopper", "custom_fields": map[string]any{"seats": nil}}, "If-Match", `"2"`)
	c.want(r, 200, "")
	c.want(c.do("PATCH", "/v1/customers/"+grace, admin, map[string]any{"name": "x"}, "If-Match", `"1"`), 412, "precondition_failed")
	c.want(c.doInvalid("PATCH", "/v1/customers/"+grace, admin, map[string]any{"email": 7}), 400, "validation_failed")
	c.want(c.do("PATCH", "/v1/customers/"+uuid.NewString(), admin, map[string]any{"name": "x"}), 404, "not_found")
	// Merge Ada (the ticket's customer) into Grace.
	c.want(c.do("POST", "/v1/customers/"+grace+"/merge", admin, map[string]any{"source_customer_id": customerID}, "Idempotency-Key", "merge-1"), 200, "")
	c.want(c.do("POST", "/v1/customers/"+grace+"/merge", admin, map[string]any{"source_customer_id": grace}), 400, "validation_failed")
	c.want(c.do("POST", "/v1/customers/"+grace+"/merge", admin, map[string]any{"source_customer_id": uuid.NewString()}), 404, "not_found")
	c.want(c.do("POST", "/v1/customers/"+grace+"/merge", admin, map[string]any{"source_customer_id": customerID}), 409, "conflict")
	c.want(c.doInvalid("POST", "/v1/customers/"+grace+"/merge", admin, map[string]any{}), 400, "validation_failed")
	c.want(c.do("GET", "/v1/customers/"+customerID, admin, nil), 200, "") // resolves to Grace
	c.want(c.do("GET", path, admin, nil), 200, "")                        // the ticket moved, with its customer

	// Batches: each item's result, successes and errors side by side.
	batch := map[string]any{"items": []any{ticketBody("batch 1"), map[string]any{"subject": 5}, 7}}
	c.want(c.do("POST", "/v1/batch/tickets", admin, batch, "Idempotency-Key", "batch-1"), 200, "")
	c.want(c.do("POST", "/v1/batch/tickets", admin, batch, "Idempotency-Key", "batch-1"), 200, "")
	c.want(c.doInvalid("POST", "/v1/batch/tickets", admin, map[string]any{"items": []any{}}), 400, "validation_failed")
	c.want(c.doInvalid("POST", "/v1/batch/tickets", admin, map[string]any{"items": []any{ticketBody("x")}, "extra": 1}), 400, "validation_failed")
	c.want(c.do("POST", "/v1/batch/customers", admin, map[string]any{"items": []any{customer, map[string]any{"email": "batch@example.com"},
		map[string]any{"email": "nope"}, map[string]any{"email": "other@example.com", "linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "c-1"}}}}}), 200, "")
	c.want(c.doInvalid("POST", "/v1/batch/customers", admin, map[string]any{"items": "x"}), 400, "validation_failed")

	// API keys and roles.
	r = c.do("POST", "/v1/api-keys", admin, map[string]any{"role": "agent", "name": "zapier"}, "Idempotency-Key", "key-1")
	c.want(r, 201, "")
	agent, agentID := r.body["key"].(string), r.body["id"].(string)
	c.want(c.do("POST", "/v1/api-keys", admin, map[string]any{"role": "agent", "name": "zapier"}, "Idempotency-Key", "key-1"), 201, "")
	c.want(c.doInvalid("POST", "/v1/api-keys", admin, map[string]any{"role": "owner"}), 400, "validation_failed")
	c.want(c.do("GET", "/v1/api-keys", admin, nil), 200, "")
	r = c.do("GET", "/v1/api-keys?limit=1", admin, nil)
	c.want(r, 200, "")
	if cursor, _ := r.body["next_cursor"].(string); cursor != "" {
		c.want(c.do("GET", "/v1/api-keys?limit=1&cursor="+url.QueryEscape(cursor), admin, nil), 200, "")
	} else {
		t.Errorf("a page of 1 of 2 keys has no next_cursor: %s", r.raw)
	}
	c.want(c.do("GET", "/v1/api-keys", agent, nil), 403, "forbidden")
	c.want(c.do("POST", "/v1/api-keys", agent, map[string]any{"role": "admin"}), 403, "forbidden")
	c.want(c.do("GET", path+"?include_internal=true", agent, nil), 403, "forbidden")
	c.want(c.do("PATCH", path+"?include_internal=true", agent, map[string]any{"priority": "normal"}), 403, "forbidden")
	c.want(c.do("GET", path+"/audit?include_internal=true", agent, nil), 403, "forbidden")
	c.want(c.do("POST", path+"/messages", agent, map[string]any{"body": "secret", "internal": true}), 403, "forbidden")
	c.want(c.do("POST", path+"/messages", agent, map[string]any{"body": "Reply from the agent key."}), 201, "")
	c.want(c.do("GET", path, agent, nil), 200, "")
	c.want(c.do("GET", "/v1/events", agent, nil), 200, "")
	c.want(c.do("GET", "/v1/rate-limits", agent, nil), 200, "")

	// IP blocklist.
	c.want(c.do("GET", "/v1/ip-blocklist", admin, nil), 200, "")
	c.want(c.do("PUT", "/v1/ip-blocklist", admin, map[string]any{"cidrs": []string{"203.0.113.77/24", "2001:db8::1"}}), 200, "")
	c.want(c.do("GET", "/v1/ip-blocklist", admin, nil), 200, "")
	c.want(c.do("PUT", "/v1/ip-blocklist", admin, map[string]any{"cidrs": []string{"nonsense", "127.0.0.0/8"}}), 400, "validation_failed")
	c.want(c.doInvalid("PUT", "/v1/ip-blocklist", admin, map[string]any{}), 400, "validation_failed")
	c.want(c.do("PUT", "/v1/ip-blocklist", agent, map[string]any{"cidrs": []string{}}), 403, "forbidden")
	c.want(c.do("PUT", "/v1/ip-blocklist", admin, map[string]any{"cidrs": []string{}}), 200, "")

	// Automation rules and the simulator.
	rule := map[string]any{"name": "VIP", "conditions": map[string]any{"all": []any{map[string]any{"field": "ticket.subject", "operator": "contains", "value": "vip"}}},
		"actions": []any{map[string]any{"type": "add_tags", "value": []string{"vip"}}, map[string]any{"type": "notify_slack", "value": map[string]any{"channel": "#vip", "message": "VIP ticket"}}}}
	r = c.do("POST", "/v1/automations", admin, rule)
	c.want(r, 201, "")
	ruleID := r.body["id"].(string)
	c.want(c.doInvalid("POST", "/v1/automations", admin, map[string]any{"name": "", "actions": []any{map[string]any{"type": "nope"}}}), 400, "validation_failed")
	c.want(c.do("POST", "/v1/automations", agent, rule), 403, "forbidden")
	c.want(c.do("GET", "/v1/automations?limit=1", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/automations/"+ruleID, admin, nil), 200, "")
	rule["position"] = 5
	c.want(c.do("PUT", "/v1/automations/"+ruleID, admin, rule, "If-Match", `"1"`), 200, "")
	c.want(c.do("PUT", "/v1/automations/"+ruleID, admin, rule, "If-Match", `"1"`), 412, "precondition_failed")
	c.want(c.do("POST", "/v1/automations/simulate", admin, map[string]any{"ticket": ticketBody("vip order")}), 200, "")
	c.want(c.do("POST", "/v1/automations/simulate", admin, map[string]any{"ticket_id": id, "update": map[string]any{"priority": "low"},
		"rules": []any{map[string]any{"name": "a", "actions": []any{map[string]any{"type": "set_priority", "value": "high"}}},
			map[string]any{"name": "b", "actions": []any{map[string]any{"type": "set_priority", "value": "urgent"}}}}}), 200, "")
	c.want(c.doInvalid("POST", "/v1/automations/simulate", admin, map[string]any{}), 400, "validation_failed")
	c.want(c.do("DELETE", "/v1/automations/"+ruleID, admin, nil), 200, "")
	c.want(c.do("DELETE", "/v1/automations/"+ruleID, admin, nil), 404, "not_found")

	// SLA policies, and a ticket showing its SLA.
	policy := map[string]any{"name": "Urgent", "conditions": map[string]any{"all": []any{map[string]any{"field": "ticket.priority", "operator": "is", "value": "urgent"}}},
		"first_response": map[string]any{"minutes": 60, "warn_before_minutes": 10}, "resolution": map[string]any{"minutes": 480}}
	r = c.do("POST", "/v1/sla-policies", admin, policy)
	c.want(r, 201, "")
	policyID := r.body["id"].(string)
	c.want(c.doInvalid("POST", "/v1/sla-policies", admin, map[string]any{"name": "x", "first_response": map[string]any{"minutes": 0}}), 400, "validation_failed")
	c.want(c.do("GET", "/v1/sla-policies", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/sla-policies/"+policyID, admin, nil), 200, "")
	c.want(c.do("PUT", "/v1/sla-policies/"+policyID, admin, policy, "If-Match", `"1"`), 200, "")
	urgent := ticketBody("SLA")
	urgent["priority"] = "urgent"
	r = c.do("POST", "/v1/tickets", admin, urgent)
	c.want(r, 201, "")
	if r.body["sla"] == nil {
		t.Errorf("an urgent ticket has no SLA: %s", r.raw)
	}
	c.want(c.do("DELETE", "/v1/sla-policies/"+policyID, admin, nil), 200, "")

	// Webhooks and their delivery log.
	r = c.do("POST", "/v1/webhooks", admin, map[string]any{"url": "https://hooks.example.com/x", "event_types": []string{"*"}})
	c.want(r, 201, "")
	hookID := r.body["id"].(string)
	c.want(c.doInvalid("POST", "/v1/webhooks", admin, map[string]any{"url": "https://hooks.example.com/x", "event_types": []string{}}), 400, "validation_failed")
	c.want(c.do("GET", "/v1/webhooks?limit=1", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/webhooks/"+hookID, admin, nil), 200, "")
	c.want(c.do("PATCH", "/v1/webhooks/"+hookID, admin, map[string]any{"active": false}), 200, "")
	c.want(c.doInvalid("PATCH", "/v1/webhooks/"+hookID, admin, map[string]any{"active": "no"}), 400, "validation_failed")
	c.want(c.do("POST", "/v1/webhooks/"+hookID+"/rotate-secret", admin, map[string]any{"overlap_seconds": 60}), 200, "")
	c.want(c.do("GET", "/v1/webhooks/"+hookID+"/deliveries?status=held", admin, nil), 200, "")
	c.want(c.do("PATCH", "/v1/webhooks/"+hookID, admin, map[string]any{"active": true}), 200, "")
	deliveryID := h.failedDelivery(h.workspace, uuid.MustParse(hookID))
	c.want(c.do("GET", "/v1/webhooks/"+hookID+"/deliveries?status=failed", admin, nil), 200, "")
	c.want(c.do("POST", "/v1/webhooks/"+hookID+"/deliveries/"+deliveryID.String()+"/redeliver", admin, nil), 202, "")
	c.want(c.do("POST", "/v1/webhooks/"+hookID+"/deliveries/"+deliveryID.String()+"/redeliver", admin, nil), 409, "conflict")
	r = c.do("POST", "/v1/webhooks/"+hookID+"/replay", admin, map[string]any{"from": "2000-01-01T00:00:00Z", "event_types": []string{"ticket.created"}})
	c.want(r, 202, "")
	c.want(c.do("GET", "/v1/webhooks/"+hookID+"/replays/"+r.body["id"].(string), admin, nil), 200, "")
	c.want(c.doInvalid("POST", "/v1/webhooks/"+hookID+"/replay", admin, map[string]any{"from": 5}), 400, "validation_failed")
	c.want(c.do("DELETE", "/v1/webhooks/"+hookID, admin, nil), 200, "")
	c.want(c.do("GET", "/v1/webhooks/"+hookID+"/deliveries?status=cancelled", admin, nil), 200, "")
	c.want(c.do("POST", "/v1/webhooks/"+hookID+"/deliveries/"+deliveryID.String()+"/redeliver", admin, nil), 404, "not_found")

	// Slack.
	c.want(c.do("PUT", "/v1/integrations/slack", admin, map[string]any{"bot_token": "xoxb-bad", "channels": map[string]any{"new_ticket": "#support"}}), 400, "validation_failed")
	c.want(c.do("PUT", "/v1/integrations/slack", admin, map[string]any{"bot_token": "xoxb-test-token", "channels": map[string]any{"new_ticket": "#support"}}), 200, "")
	h.queueJobs(h.workspace, h.workspace, 2, false)
	c.want(c.do("GET", "/v1/integrations/slack", admin, nil), 200, "")
	c.want(c.do("POST", "/v1/integrations/slack/revalidate", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/integrations/slack/notifications", admin, nil), 200, "")
	c.want(c.do("DELETE", "/v1/integrations/slack", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/integrations/slack", admin, nil), 404, "not_found")

	// OAuth integrations.
	r = c.do("POST", "/v1/integrations/google/connect", admin, nil)
	c.want(r, 201, "")
	authURL, _ := url.Parse(r.body["authorization_url"].(string))
	code, err := h.oauth.Authorize(authURL.String())
	if err != nil {
		t.Fatal(err)
	}
	r = c.do("GET", "/v1/integrations/google/callback?state="+url.QueryEscape(authURL.Query().Get("state"))+"&code="+url.QueryEscape(code), "", nil)
	c.want(r, 200, "")
	connID := r.body["id"].(string)
	c.want(c.do("GET", "/v1/integrations/google/callback?state=forged&code=x", "", nil), 400, "validation_failed")
	h.queueJobs(h.workspace, uuid.MustParse(connID), 2, true)
	c.want(c.do("GET", "/v1/integrations", admin, nil), 200, "")
	c.want(c.do("GET", "/v1/integrations/"+connID, admin, nil), 200, "")
	c.want(c.do("POST", "/v1/integrations/"+connID+"/sync", admin, nil), 202, "")
	c.want(c.do("DELETE", "/v1/integrations/"+connID, admin, nil), 200, "")
	c.want(c.doInvalid("POST", "/v1/integrations/outlook/connect", admin, map[string]any{"imap_port": "993"}), 400, "validation_failed")

	// Linked profiles.
	h.connectStripe("acct_1DOC")
	r = c.do("POST", "/v1/customers", admin, map[string]any{"email": "doc@example.com"})
	c.want(r, 201, "")
	c.want(c.do("POST", "/v1/customers/"+r.body["id"].(string)+"/linked-profiles/refresh", admin, nil), 200, "")

	// Rate limits, and a 429.
	c.want(c.do("GET", "/v1/rate-limits", admin, nil), 200, "")
	c.want(c.do("PUT", "/v1/rate-limits", admin, map[string]any{"limits": map[string]any{"events.read": map[string]any{"limit": 1, "window_seconds": 60}}, "soft_throttle_delay_ms": 100}), 200, "")
	c.want(c.doInvalid("PUT", "/v1/rate-limits", admin, map[string]any{"limits": map[string]any{"tickets.read": map[string]any{"limit": 0, "window_seconds": 7200}, "tickets.nope": nil}}), 400, "validation_failed")
	c.want(c.doInvalid("PUT", "/v1/rate-limits", admin, map[string]any{"limits": map[string]any{}}), 400, "validation_failed")
	c.want(c.do("PUT", "/v1/rate-limits", agent, map[string]any{"soft_throttle_delay_ms": 0}), 403, "forbidden")
	h.clock.Advance(2 * time.Minute) // the earlier reads leave the window
	c.want(c.do("GET", "/v1/events", admin, nil), 200, "")
	r = c.do("GET", "/v1/events", admin, nil)
	c.want(r, 429, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", r.header)
	}
	c.want(c.do("PUT", "/v1/rate-limits", admin, map[string]any{"limits": map[string]any{"events.read": nil}}), 200, "")

	// Revocation, and 401s.
	c.want(c.do("DELETE", "/v1/api-keys/"+agentID, admin, nil), 200, "")
	c.want(c.do("DELETE", "/v1/api-keys/"+agentID, admin, nil), 404, "not_found")
	c.want(c.doInvalid("DELETE", "/v1/api-keys/not-a-uuid", admin, nil), 404, "not_found")
	c.want(c.do("DELETE", "/v1/api-keys/"+agentID, agent, nil), 401, "unauthorized")
	r = c.do("GET", "/v1/api-keys", admin, nil)
	adminID := r.body["data"].([]any)[0].(map[string]any)["id"].(string)
	c.want(c.do("DELETE", "/v1/api-keys/"+adminID, admin, nil), 409, "conflict")
	c.want(c.doInvalid("GET", "/v1/tickets", "", nil), 401, "unauthorized")
	c.want(c.doInvalid("GET", "/v1/tickets", "", nil, "Authorization", "Basic "+admin), 401, "unauthorized")
	c.want(c.do("GET", "/v1/tickets", newSecret(t), nil), 401, "unauthorized")
	c.want(c.doInvalid("POST", "/v1/tickets", "", map[string]any{"api_key": admin}), 400, "key_in_wrong_place")
	c.want(c.do("GET", "/v1/tickets?access_token=x", admin, nil), 400, "key_in_wrong_place")

	// A closed ticket refuses changes.
	c.want(c.do("PATCH", path, admin, map[string]any{"status": "solved"}), 200, "")
	c.want(c.do("PATCH", path, admin, map[string]any{"status": "closed"}), 200, "")
	c.want(c.do("PATCH", path, admin, map[string]any{"priority": "urgent"}), 409, "conflict")
	c.want(c.do("POST", path+"/messages", admin, map[string]any{"body": "hello?"}), 409, "conflict")

	// Outcomes the real services do not produce on demand: a request still
	// running (409 idempotency_key_in_use), a version conflict, a failing
	// dependency, a panic.
	tickets := &scriptedTickets{Tickets: h.service.Tickets, scripts: map[string]func() error{}}
	sc := c.on(h.withServer(tickets, idempotency.New(h.store.DB)))
	script := func(subject string, fn func() error) {
		tickets.mu.Lock()
		tickets.scripts[subject] = fn
		tickets.mu.Unlock()
	}
	started, release := make(chan struct{}), make(chan struct{})
	script("slow", func() error { close(started); <-release; return nil })
	firstDone := make(chan response)
	go func() {
		firstDone <- sc.do("POST", "/v1/tickets", admin, ticketBody("slow"), "Idempotency-Key", "slow")
	}()
	<-started
	sc.want(sc.do("POST", "/v1/tickets", admin, ticketBody("slow"), "Idempotency-Key", "slow"), 409, "idempotency_key_in_use")
	close(release)
	if first := <-firstDone; first.status != 201 {
		t.Errorf("the slow create: %d %s", first.status, first.raw)
	}
	for _, s := range []struct {
		err    error
		status int
		code   string
	}{
		{helpdeskflow.Errorf(helpdeskflow.EVersionConflict, "moved"), 409, "version_conflict"},
		{helpdeskflow.Errorf(helpdeskflow.EUnavailable, "down"), 503, "unavailable"},
		{helpdeskflow.Errorf(helpdeskflow.EInternal, "boom"), 500, "internal"},
	} {
		script(s.code, func() error { return s.err })
		sc.want(sc.do("POST", "/v1/tickets", admin, ticketBody(s.code)), s.status, s.code)
	}
	script("panic", func() error { panic("handler bug") })
	sc.want(sc.do("POST", "/v1/tickets", admin, ticketBody("panic")), 500, "internal")

	// Lists from the read model, with what the relay and the projector
	// made of all the above: the list item shapes, not just empty pages.
	projected := c.on(withReadModels(t, h))
	for _, list := range []string{"/v1/tickets?limit=1", "/v1/customers?tag=vip"} {
		testenv.Eventually(t, 30*time.Second, func() error {
			if r := projected.h.do("GET", list, admin, nil); r.status != 200 || len(r.body["data"].([]any)) == 0 {
				return fmt.Errorf("GET %s: nothing projected yet: %d %s", list, r.status, r.raw)
			}
			return nil
		})
	}
	r = projected.do("GET", "/v1/tickets?limit=1", admin, nil)
	c.want(r, 200, "")
	c.want(projected.do("GET", "/v1/tickets?limit=1&cursor="+url.QueryEscape(r.body["next_cursor"].(string)), admin, nil), 200, "")
	c.want(projected.do("GET", "/v1/tickets?status=closed&tag=refund", admin, nil), 200, "")
	c.want(projected.do("GET", "/v1/customers?tag=vip", admin, nil), 200, "")
	c.want(projected.do("GET", "/v1/customers?custom_fields.tier=gold&limit=1", admin, nil), 200, "")

	// Read-your-writes: a write's position as a list's min_position, met
	// by the read model that moves, and not by the one that does not
	// (its projector never runs): 503 projection_behind.
	written := projected.do("POST", "/v1/tickets", admin, ticketBody("read your writes"))
	c.want(written, 201, "")
	token := url.QueryEscape(written.header.Get("X-HDF-Position"))
	c.want(projected.do("GET", "/v1/tickets?max_wait=10&min_position="+token, admin, nil), 200, "")
	c.want(projected.do("GET", "/v1/customers?max_wait=10&min_position="+token, admin, nil), 200, "")
	c.want(c.do("GET", "/v1/tickets?max_wait=0&min_position="+token, admin, nil), 503, "projection_behind")
	c.want(c.do("GET", "/v1/customers?max_wait=0.1&min_position="+token, admin, nil), 503, "projection_behind")
	c.want(c.do("GET", "/v1/tickets?min_position=not-a-position", admin, nil), 400, "validation_failed")
	c.want(c.doInvalid("GET", "/v1/customers?max_wait=11", admin, nil), 400, "validation_failed")

	// Every route was exercised, with a success among its answers.
	for _, rt := range h.server.Routes() {
		name := rt.Method + " " + openAPIPath(rt.Path)
		statuses := c.seen[name]
		if !slices.ContainsFunc(mapKeys(statuses), func(s int) bool { return s < 300 }) {
			t.Errorf("%s: no successful answer validated; add it to this test", name)
		}
	}
	if testing.Verbose() {
		var lines []string
		for name, statuses := range c.seen {
			codes := mapKeys(statuses)
			sort.Ints(codes)
			lines = append(lines, fmt.Sprintf("%-40s %v", name, codes))
		}
		sort.Strings(lines)
		t.Logf("validated exchanges by operation and status:\n%s", strings.Join(lines, "\n"))
	}
}

// withReadModels returns a copy of h whose lists read a ClickHouse
// database of their own, fed from h's event store by a relay to an
// embedded Kafka broker and a projector, as in production.
func withReadModels(t *testing.T, h *harness) *harness {
	t.Helper()
	out, startProjector := withPausedReadModels(t, h)
	startProjector()
	return out
}

// withPausedReadModels is withReadModels with the projector paused until
// the function it returns starts it (once): the relay publishes from the
// start, the read model moves only once the projector runs.
func withPausedReadModels(t *testing.T, h *harness) (*harness, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	name := testenv.RandomName("t_")
	ch, err := projections.OpenClickHouse(ctx, testenv.ClickHouseAddr(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name) //nolint:errcheck // best effort
		ch.Close()
	})
	if err := projections.Migrate(ctx, ch); err != nil {
		t.Fatal(err)
	}
	_, brokers := testenv.Kafka(t)
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	relay, err := relay.New(h.store.EventStore, producer, relay.Config{PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	projector, err := projections.NewProjector(projections.Config{Brokers: brokers, ClickHouse: ch, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); relay.Run(ctx) }() //nolint:errcheck // ends with ctx
	t.Cleanup(func() { cancel(); wg.Wait(); producer.Close() })
	var startOnce sync.Once
	startProjector := func() {
		startOnce.Do(func() {
			wg.Add(1)
			go func() { defer wg.Done(); projector.Run(ctx) }() //nolint:errcheck // ends with ctx
		})
	}

	limiter, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Lister, cfg.CustomerLister = projections.NewTicketReader(ch), projections.NewCustomerReader(ch)
	cfg.ReadPositions = projections.NewPositionWatcher(projections.NewPositionReader(ch), projections.PositionWatcherConfig{PollInterval: 10 * time.Millisecond})
	cfg.Limiter, cfg.Auth = limiter, access.NewCache(h.store.AccessStore, access.CacheConfig{})
	cfg.Registerer, cfg.Gatherer, cfg.RequestLog = nil, nil, nil // h's server holds the metric names
	server, err := http.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	out := *h
	out.url, out.server = srv.URL, server
	return &out, startProjector
}

func mapKeys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

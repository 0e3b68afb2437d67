package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/http"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
)

// ticketFor is a create body for subject and customer email.
func ticketFor(subject, email string) map[string]any {
	return map[string]any{"subject": subject, "customer": map[string]any{"email": email}, "message": map[string]any{"body": "<p>" + subject + "</p>"}}
}

// results returns a batch answer's results, checking their indexes.
func results(t *testing.T, r response, n int) []map[string]any {
	t.Helper()
	data, _ := r.body["data"].([]any)
	if len(data) != n {
		t.Fatalf("%d results, want %d: %s", len(data), n, r.raw)
	}
	out := make([]map[string]any, n)
	for i, d := range data {
		out[i] = d.(map[string]any)
		if out[i]["index"] != float64(i) {
			t.Fatalf("result %d has index %v", i, out[i]["index"])
		}
	}
	return out
}

// withoutRequestID is an error object without its request id (the batch's
// and the single request's differ).
func withoutRequestID(e any) map[string]any {
	m, _ := e.(map[string]any)
	out := map[string]any{}
	for k, v := range m {
		if k != "request_id" {
			out[k] = v
		}
	}
	return out
}

// wantAlone fails unless result is what path answers item sent alone: the
// same status and, for an error, the same error object.
func (h *harness) wantAlone(i int, result map[string]any, path string, item any) response {
	h.t.Helper()
	raw, err := json.Marshal(item)
	if err != nil {
		h.t.Fatal(err)
	}
	alone := h.do("POST", path, h.adminKey, string(raw))
	if int(result["status"].(float64)) != alone.status {
		h.t.Errorf("item %d: status %v in the batch, %d alone: %s", i, result["status"], alone.status, alone.raw)
	}
	if alone.status >= 300 && !reflect.DeepEqual(withoutRequestID(result["error"]), withoutRequestID(alone.body["error"])) {
		h.t.Errorf("item %d: error in the batch %v, alone %v", i, result["error"], alone.body["error"])
	}
	return alone
}

func (h *harness) customersNamed(email string) int {
	h.t.Helper()
	r := h.do("GET", "/v1/customers?email="+email, h.adminKey, nil)
	h.want(r, 200, "")
	return len(r.body["data"].([]any))
}

// TestBatch_TicketsEachAsAlone: a batch with a valid item, an invalid one,
// a second item for the same new email, one refused by an automation
// conflict, one for an existing customer and one that is not an object
// answers each item as POST /v1/tickets answers it alone, stores exactly
// the valid ones (one customer for the shared email, nothing of the
// conflicting one), in one transaction.
func TestBatch_TicketsEachAsAlone(t *testing.T) {
	h := newHarness(t)
	h.createRule(rule("High", 1, []any{when("ticket.subject", "contains", "clash")}, "set_priority", "high"))
	h.createRule(rule("Low", 2, []any{when("ticket.subject", "contains", "clash")}, "set_priority", "low"))
	h.want(h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "known@example.com", "name": "Known"}), 201, "")
	before := h.storedEvents()

	items := []any{
		ticketFor("First", "new@example.com"),
		map[string]any{"subject": 5, "customer": map[string]any{"email": "not-an-email"}},
		ticketFor("Second", " NEW@example.com "),
		ticketFor("A clash of rules", "clash@example.com"),
		ticketFor("For a known customer", "known@example.com"),
		"not an object",
		// A new email whose first item fails: the next one creates it.
		ticketFor("Another clash", "later@example.com"),
		ticketFor("Fine now", "later@example.com"),
	}
	r := h.do("POST", "/v1/batch/tickets", h.adminKey, map[string]any{"items": items})
	h.want(r, 200, "")
	res := results(t, r, len(items))

	wantStatus := []float64{201, 400, 201, 409, 201, 400, 409, 201}
	var created []string
	for i, want := range wantStatus {
		if res[i]["status"] != want {
			t.Fatalf("item %d: status %v, want %v: %s", i, res[i]["status"], want, r.raw)
		}
		if want == 201 {
			ticket := res[i]["ticket"].(map[string]any)
			created = append(created, ticket["id"].(string))
			// The ticket as POST /v1/tickets answers it: as GET shows it.
			g := h.do("GET", "/v1/tickets/"+ticket["id"].(string), h.adminKey, nil)
			h.want(g, 200, "")
			if !reflect.DeepEqual(ticket, g.body) {
				t.Errorf("item %d: the batch answered\n%v\nGET answers\n%v", i, ticket, g.body)
			}
		}
	}
	// Refused items answer as they would alone (and alone store nothing
	// either: the automation conflict stays a conflict).
	for _, i := range []int{1, 3, 5} {
		h.wantAlone(i, res[i], "/v1/tickets", items[i])
	}
	if codes := []string{withoutRequestID(res[1]["error"])["code"].(string), withoutRequestID(res[3]["error"])["code"].(string)}; !slices.Equal(codes, []string{"validation_failed", "automation_conflict"}) {
		t.Errorf("error codes %v", codes)
	}

	// Exactly the valid items are stored: one new customer shared by the
	// first and second item, three tickets, nothing of the conflict.
	first, second := res[0]["ticket"].(map[string]any), res[2]["ticket"].(map[string]any)
	if first["customer_id"] != second["customer_id"] {
		t.Errorf("two items for one new email made two customers: %v and %v", first["customer_id"], second["customer_id"])
	}
	if got := h.storedEvents() - before; got != 6 {
		t.Errorf("the batch stored %d events, want 6 (2 customer.created and 4 ticket.created)", got)
	}
	c := h.do("GET", "/v1/customers/"+first["customer_id"].(string), h.adminKey, nil)
	if ids := c.body["ticket_ids"].([]any); len(ids) != 2 {
		t.Errorf("the shared customer has tickets %v, want the first and second item's", ids)
	}
	if n := h.customersNamed("clash@example.com"); n != 0 {
		t.Error("the conflicting item left its customer behind")
	}
	later := h.do("GET", "/v1/customers/"+res[7]["ticket"].(map[string]any)["customer_id"].(string), h.adminKey, nil)
	if ids := later.body["ticket_ids"].([]any); later.body["email"] != "later@example.com" || len(ids) != 1 {
		t.Errorf("the customer created by the item after a failed one: %s", later.raw)
	}
}

// TestBatch_CustomersEachAsAlone: an upsert batch answers each item as
// POST /v1/customers would alone, in order: an email twice is created then
// changed, a linked profile another customer holds is that item's 409, and
// only the valid items are stored.
func TestBatch_CustomersEachAsAlone(t *testing.T) {
	h := newHarness(t)
	holder := h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "holder@example.com",
		"linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "p-1"}}})
	h.want(holder, 201, "")
	h.want(h.do("POST", "/v1/tickets", h.adminKey, ticketFor("Holder's", "holder@example.com")), 201, "")
	before := h.storedEvents()

	items := []any{
		map[string]any{"email": "dup@example.com", "name": "Dup", "tags": []string{"a"}},
		map[string]any{"email": "nope"},
		map[string]any{"email": "DUP@example.com", "tags": []string{"b"}},
		map[string]any{"email": "thief@example.com", "linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "p-1"}}},
		map[string]any{"email": "holder@example.com", "metadata": map[string]any{"crm": "x"}},
	}
	r := h.do("POST", "/v1/batch/customers", h.adminKey, map[string]any{"items": items})
	h.want(r, 200, "")
	res := results(t, r, len(items))
	for i, want := range []float64{201, 400, 200, 409, 200} {
		if res[i]["status"] != want {
			t.Fatalf("item %d: status %v, want %v: %s", i, res[i]["status"], want, r.raw)
		}
	}
	dupFirst, dupThen := res[0]["customer"].(map[string]any), res[2]["customer"].(map[string]any)
	if dupFirst["id"] != dupThen["id"] || dupFirst["version"] != float64(1) || !reflect.DeepEqual(dupThen["tags"], []any{"a", "b"}) {
		t.Errorf("one email twice: first %v, then %v; want one customer, created then given tag b", dupFirst, dupThen)
	}
	// The last item of each customer shows it as GET does (ticket ids
	// included).
	for _, i := range []int{2, 4} {
		c := res[i]["customer"].(map[string]any)
		g := h.do("GET", "/v1/customers/"+c["id"].(string), h.adminKey, nil)
		if !reflect.DeepEqual(c, g.body) {
			t.Errorf("item %d: the batch answered\n%v\nGET answers\n%v", i, c, g.body)
		}
	}
	if ids := res[4]["customer"].(map[string]any)["ticket_ids"].([]any); len(ids) != 1 {
		t.Errorf("holder's ticket ids %v, want its one ticket", ids)
	}
	h.wantAlone(1, res[1], "/v1/customers", items[1])
	h.wantAlone(3, res[3], "/v1/customers", items[3])
	if got := h.storedEvents() - before; got != 3 {
		t.Errorf("the batch stored %d events, want 3 (dup created and updated, holder updated)", got)
	}
	if h.customersNamed("thief@example.com") != 0 {
		t.Error("the item refused for its linked profile left its customer behind")
	}
}

// forgetfulKeys keeps Idempotency-Keys like the real store but never
// completes one after the handler: as if the process died between the
// handler's commit and keeping the response.
type forgetfulKeys struct {
	*idempotency.Keys
	completes atomic.Int32
}

func (k *forgetfulKeys) Complete(context.Context, helpdeskflow.IdempotencyScope, string, uuid.UUID, helpdeskflow.IdempotentResponse) error {
	k.completes.Add(1)
	return errors.New("the process died before keeping the response")
}

// TestBatch_IdempotentRetry: a retry with the same Idempotency-Key replays
// the answer byte for byte and creates nothing; another body with the key
// is 422. The response is kept in the batch's own transaction: even when
// the process dies right after the commit (nothing kept after the
// handler), a retry once the lease has run out replays, never creates the
// tickets a second time.
func TestBatch_IdempotentRetry(t *testing.T) {
	h := newHarness(t)
	body := map[string]any{"items": []any{ticketFor("One", "a@example.com"), ticketFor("Two", "b@example.com"), map[string]any{"subject": ""}}}
	first := h.do("POST", "/v1/batch/tickets", h.adminKey, body, "Idempotency-Key", "sync-1")
	h.want(first, 200, "")
	again := h.do("POST", "/v1/batch/tickets", h.adminKey, body, "Idempotency-Key", "sync-1")
	h.want(again, 200, "")
	if again.raw != first.raw || again.header.Get("Idempotent-Replayed") != "true" || again.header.Get("Content-Type") != first.header.Get("Content-Type") {
		t.Errorf("the retry is not the replay of the first answer:\n%s\n%s\n%v", first.raw, again.raw, again.header)
	}
	if n := h.ticketsCreated(h.workspace); n != 2 {
		t.Errorf("%d tickets created, want 2", n)
	}
	other := map[string]any{"items": []any{ticketFor("Three", "c@example.com")}}
	h.want(h.do("POST", "/v1/batch/tickets", h.adminKey, other, "Idempotency-Key", "sync-1"), 422, "idempotency_key_reused")

	keys := &forgetfulKeys{Keys: idempotency.New(h.store.DB)}
	crashy := h.withServer(h.service.Tickets, keys)
	crashed := crashy.do("POST", "/v1/batch/tickets", h.adminKey, other, "Idempotency-Key", "sync-2")
	h.want(crashed, 200, "")
	if _, err := h.db.Pool().Exec(context.Background(), `UPDATE idempotency_keys SET created_at = created_at - $1::interval WHERE key = 'sync-2'`,
		(idempotency.Lease + time.Second).String()); err != nil {
		t.Fatal(err)
	}
	retry := h.do("POST", "/v1/batch/tickets", h.adminKey, other, "Idempotency-Key", "sync-2")
	h.want(retry, 200, "")
	if retry.raw != crashed.raw || retry.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the retry after the crash ran the batch again:\n%s\n%s", crashed.raw, retry.raw)
	}
	if n := h.ticketsCreated(h.workspace); n != 3 {
		t.Errorf("%d tickets created, want 3: the retry after a crash created again", n)
	}
	if n := keys.completes.Load(); n != 0 {
		t.Errorf("the middleware kept the batch's response after the handler %d times; the transaction keeps it", n)
	}
}

// TestBatch_Refusals: a body that is not {"items": [1 to 100 values]} is
// refused whole, naming the field, and stores nothing; the batch routes take
// up to 10 MiB.
func TestBatch_Refusals(t *testing.T) {
	h := newHarness(t)
	many := make([]any, 101)
	for i := range many {
		many[i] = ticketFor(fmt.Sprintf("T%d", i), "many@example.com")
	}
	for _, c := range []struct {
		body   any
		status int
		code   string
		field  string
	}{
		{map[string]any{"items": many}, 400, "validation_failed", "items"},
		{map[string]any{"items": []any{}}, 400, "validation_failed", "items"},
		{map[string]any{"items": "x"}, 400, "validation_failed", "items"},
		{map[string]any{}, 400, "validation_failed", "items"},
		{map[string]any{"items": many[:1], "itemz": 1}, 400, "validation_failed", "itemz"},
		{`[{"subject": "s"}]`, 400, "invalid_json", ""},
		{`{"items": [`, 400, "invalid_json", ""},
	} {
		for _, path := range []string{"/v1/batch/tickets", "/v1/batch/customers"} {
			r := h.do("POST", path, h.adminKey, c.body)
			h.want(r, c.status, c.code)
			if _, ok := details(t, r)[c.field]; c.field != "" && !ok {
				t.Errorf("%s: the error does not name %s: %s", path, c.field, r.raw)
			}
		}
	}
	if n := h.ticketsCreated(h.workspace); n != 0 {
		t.Errorf("refused batches created %d tickets", n)
	}

	// Over 1 MiB is fine for a batch (each item keeps its own limits);
	// over 10 MiB is not.
	large := make([]any, 30)
	for i := range large {
		item := ticketFor(fmt.Sprintf("Large %d", i), "large@example.com")
		item["message"] = map[string]any{"body": strings.Repeat("a", 45_000)}
		large[i] = item
	}
	h.want(h.do("POST", "/v1/batch/tickets", h.adminKey, map[string]any{"items": large}), 200, "")
	huge := map[string]any{"items": []any{map[string]any{"subject": strings.Repeat("x", http.MaxBatchBodyBytes)}}}
	h.want(h.do("POST", "/v1/batch/tickets", h.adminKey, huge), 413, "payload_too_large")
}

// TestBatch_RateLimitCountsItems: each item counts against the route's
// category; a batch that does not fit in what remains is refused whole.
func TestBatch_RateLimitCountsItems(t *testing.T) {
	h := newHarness(t)
	h.want(h.do("PUT", "/v1/rate-limits", h.adminKey, map[string]any{"limits": map[string]any{
		"tickets.create": map[string]any{"limit": 10, "window_seconds": 60}, "customers.write": map[string]any{"limit": 2, "window_seconds": 60}}}), 200, "")
	batch := func(n int) map[string]any {
		items := make([]any, n)
		for i := range items {
			items[i] = ticketFor(fmt.Sprintf("T%d", i), "rate@example.com")
		}
		return map[string]any{"items": items}
	}
	r := h.do("POST", "/v1/batch/tickets", h.adminKey, batch(6))
	h.want(r, 200, "")
	if got := r.header.Get("X-RateLimit-Remaining"); got != "4" {
		t.Errorf("after 6 items of 10: remaining %s, want 4", got)
	}
	r = h.do("POST", "/v1/batch/tickets", h.adminKey, batch(5))
	h.want(r, 429, "rate_limited")
	if !strings.Contains(r.raw, "tickets.create") || r.header.Get("Retry-After") == "" {
		t.Errorf("429 without its category or Retry-After: %v %s", r.header, r.raw)
	}
	if n := h.ticketsCreated(h.workspace); n != 6 {
		t.Errorf("%d tickets after a refused batch, want 6", n)
	}
	r = h.do("POST", "/v1/batch/tickets", h.adminKey, batch(4))
	h.want(r, 200, "")
	if got := r.header.Get("X-RateLimit-Remaining"); got != "0" {
		t.Errorf("after 10 items of 10: remaining %s, want 0", got)
	}
	customers := map[string]any{"items": []any{map[string]any{"email": "a@example.com"}, map[string]any{"email": "b@example.com"}, map[string]any{"email": "c@example.com"}}}
	h.want(h.do("POST", "/v1/batch/customers", h.adminKey, customers), 429, "rate_limited")
	if h.customersNamed("a@example.com") != 0 {
		t.Error("a refused customer batch stored a customer")
	}
}

// TestBatch_EventBudget: the events of a batch share one transaction's
// MaxAppendBytes; the items past it are each refused 413
// payload_too_large, the ones before commit.
func TestBatch_EventBudget(t *testing.T) {
	h := newHarness(t)
	items := make([]any, 45)
	for i := range items {
		item := ticketFor("Big "+strconv.Itoa(i), "big@example.com")
		item["message"] = map[string]any{"body": strings.Repeat("😀", 50_000)} // about 400 KB stored (body and body_text)
		items[i] = item
	}
	r := h.do("POST", "/v1/batch/tickets", h.adminKey, map[string]any{"items": items})
	h.want(r, 200, "")
	res := results(t, r, len(items))
	ok := 0
	for ok < len(res) && res[ok]["status"] == float64(201) {
		ok++
	}
	if ok == 0 || ok == len(res) {
		t.Fatalf("%d of %d items created; want the first ones until the transaction's budget is spent", ok, len(res))
	}
	for i := ok; i < len(res); i++ {
		if res[i]["status"] != float64(413) || withoutRequestID(res[i]["error"])["code"] != "payload_too_large" {
			t.Errorf("item %d past the budget: %v", i, res[i])
		}
	}
	if n := h.ticketsCreated(h.workspace); n != ok {
		t.Errorf("%d tickets stored, want the %d created", n, ok)
	}
	h.want(h.do("POST", "/v1/tickets", h.adminKey, items[len(items)-1]), 201, "") // alone it fits
}

// TestBatch_EventsReachTheReadModels: a batch's events are in the event
// store in per-stream order (contiguous versions, the change feed in
// order), and the relay and the projector carry them to the read models.
func TestBatch_EventsReachTheReadModels(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/batch/customers", h.adminKey, map[string]any{"items": []any{
		map[string]any{"email": "flow@example.com", "tags": []string{"first"}},
		map[string]any{"email": "flow@example.com", "tags": []string{"second"}},
	}})
	h.want(r, 200, "")
	customerID := results(t, r, 2)[0]["customer"].(map[string]any)["id"].(string)
	r = h.do("POST", "/v1/batch/tickets", h.adminKey, map[string]any{"items": []any{
		ticketFor("Flow 1", "flow@example.com"), ticketFor("Flow 2", "flow@example.com"), ticketFor("Flow 3", "flow@example.com")}})
	h.want(r, 200, "")

	events := h.feedEvents(func(e map[string]any) bool { return e["type"] == "ticket.created" })
	var customerVersions []float64
	tickets := 0
	for _, e := range events {
		if e["stream_id"] == customerID {
			customerVersions = append(customerVersions, e["version"].(float64))
		}
		if e["type"] == "ticket.created" {
			tickets++
		}
	}
	if !slices.Equal(customerVersions, []float64{1, 2}) || tickets != 3 {
		t.Fatalf("the change feed shows the customer's versions %v and %d tickets, want [1 2] in order and 3", customerVersions, tickets)
	}

	projected := withReadModels(t, h)
	testenv.Eventually(t, 30*time.Second, func() error {
		r := projected.do("GET", "/v1/tickets?customer_id="+customerID, h.adminKey, nil)
		if n := len(r.body["data"].([]any)); n != 3 {
			return fmt.Errorf("%d of the batch's tickets projected", n)
		}
		c := projected.do("GET", "/v1/customers?tag=second", h.adminKey, nil)
		if data := c.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["version"] != float64(2) {
			return fmt.Errorf("the customer's second version is not projected: %s", c.raw)
		}
		return nil
	})
}

// TestBatch_ConcurrentBatchesDoNotDeadlock: batches reserving the same new
// emails in opposite orders take the reservations in one (email) order,
// so Postgres never finds a deadlock and every batch completes.
func TestBatch_ConcurrentBatchesDoNotDeadlock(t *testing.T) {
	h := newHarness(t)
	deadlocks := func() int64 {
		var n int64
		if err := h.db.Pool().QueryRow(context.Background(), `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()
	const rounds, emails = 4, 20
	var wg sync.WaitGroup
	answers := make(chan response, 2*rounds)
	for round := range rounds {
		for _, reverse := range []bool{false, true} {
			items := make([]any, emails)
			for i := range items {
				n := i
				if reverse {
					n = emails - 1 - i
				}
				items[i] = ticketFor(fmt.Sprintf("Round %d", round), fmt.Sprintf("r%d-%02d@example.com", round, n))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers <- h.do("POST", "/v1/batch/tickets", h.adminKey, map[string]any{"items": items})
			}()
		}
	}
	wg.Wait()
	close(answers)
	for r := range answers {
		h.want(r, 200, "")
		for i, res := range results(t, r, emails) {
			if res["status"] != float64(201) {
				t.Errorf("item %d: %v", i, res)
			}
		}
	}
	if n := h.ticketsCreated(h.workspace); n != 2*rounds*emails {
		t.Errorf("%d tickets, want %d", n, 2*rounds*emails)
	}
	if after := deadlocks(); after != before {
		t.Errorf("Postgres found %d deadlocks", after-before)
	}
}

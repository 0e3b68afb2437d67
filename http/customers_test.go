package http_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestServer_CustomerUpsert(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "not-an-email", "tags": []string{""}, "metadata": map[string]any{"": 1},
		"linked_profiles": []any{map[string]any{"provider": "Not Valid!", "external_id": ""}}})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{`"email"`, `"tags[0]"`, `"metadata."`, `"linked_profiles[0].provider"`, `"linked_profiles[0].external_id"`} {
		if !strings.Contains(r.raw, field) {
			t.Errorf("error does not name %s: %s", field, r.raw)
		}
	}

	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{
		"email": "  Grace@Example.COM ", "name": "Grace", "tags": []string{"VIP"},
		"custom_fields":   map[string]any{"tier": "gold", "seats": 12, "trial": false},
		"metadata":        map[string]any{"crm": map[string]any{"owner": "sam"}},
		"linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "c-1", "url": "https://shop.example/c/1", "data": map[string]any{"orders": 3}}},
	})
	h.want(r, 201, "")
	id := r.body["id"].(string)
	if r.body["email"] != "grace@example.com" || fmt.Sprint(r.body["custom_fields"]) != "map[seats:12 tier:gold trial:false]" ||
		fmt.Sprint(r.body["tags"]) != "[vip]" || r.header.Get("Location") != "/v1/customers/"+id {
		t.Fatalf("created: %s", r.raw)
	}
	// Same email, written differently: the same customer, 200, fields merged.
	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "grace@example.com", "tags": []string{"beta"}, "custom_fields": map[string]any{"trial": nil}})
	h.want(r, 200, "")
	if r.body["id"] != id || fmt.Sprint(r.body["tags"]) != "[vip beta]" || fmt.Sprint(r.body["custom_fields"]) != "map[seats:12 tier:gold]" || r.body["version"] != 2.0 {
		t.Fatalf("upserted: %s", r.raw)
	}
	// The same again changes nothing.
	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "GRACE@example.com", "tags": []string{"beta"}})
	if r.status != 200 || r.body["version"] != 2.0 {
		t.Errorf("no-op upsert: %d version %v", r.status, r.body["version"])
	}
	// A linked profile belongs to one customer.
	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "other@example.com",
		"linked_profiles": []any{map[string]any{"provider": "shopify", "external_id": "c-1"}}})
	h.want(r, 409, "conflict")
	if h.do("GET", "/v1/customers?email=other@example.com", h.adminKey, nil).raw != `{"data":[],"next_cursor":null}`+"\n" {
		t.Error("a refused upsert left a customer behind")
	}
	// Found by email and by linked profile.
	for _, q := range []string{"email=%20GRACE@example.com", "provider=shopify&external_id=c-1"} {
		r = h.do("GET", "/v1/customers?"+q, h.adminKey, nil)
		h.want(r, 200, "")
		if data := r.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id {
			t.Errorf("find %s: %s", q, r.raw)
		}
	}
	h.want(h.do("GET", "/v1/customers?email=", h.adminKey, nil), 400, "validation_failed")
}

func TestServer_CustomerUpsertRace(t *testing.T) {
	h := newHarness(t)
	emails := []string{"A@x.com ", "a@X.COM", " a@x.com", "A@X.com"}
	var wg sync.WaitGroup
	ids := make([]string, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": emails[i%len(emails)], "tags": []string{fmt.Sprintf("t%d", i)}})
			if r.status != 201 && r.status != 200 {
				t.Errorf("upsert %d: %d %s", i, r.status, r.raw)
				return
			}
			ids[i] = r.body["id"].(string)
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("50 concurrent upserts of one email made several customers: %v", ids)
		}
	}
	r := h.do("GET", "/v1/customers/"+ids[0], h.adminKey, nil)
	if len(r.body["tags"].([]any)) != 50 {
		t.Errorf("customer has %d tags, want all 50 upserts applied", len(r.body["tags"].([]any)))
	}
}

func TestServer_CustomerMerge(t *testing.T) {
	h := newHarness(t)
	ticket := h.newTicket(h.adminKey) // customer ada@example.com
	r := h.do("GET", "/v1/customers?email=ada@example.com", h.adminKey, nil)
	source := r.body["data"].([]any)[0].(map[string]any)
	sourceID := source["id"].(string)
	if fmt.Sprint(source["ticket_ids"]) != "["+ticket+"]" {
		t.Fatalf("customer's tickets: %v, want [%s]", source["ticket_ids"], ticket)
	}
	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "ada.lovelace@example.com", "name": "Ada Lovelace",
		"custom_fields": map[string]any{"tier": "gold"}, "tags": []string{"vip"}})
	targetID := r.body["id"].(string)
	h.want(h.do("PATCH", "/v1/customers/"+sourceID, h.adminKey, map[string]any{"custom_fields": map[string]any{"tier": "silver", "region": "eu"}, "tags": []string{"old"}}), 200, "")

	h.want(h.do("POST", "/v1/customers/"+targetID+"/merge", h.adminKey, map[string]any{"source_customer_id": targetID}), 400, "validation_failed")
	r = h.do("POST", "/v1/customers/"+targetID+"/merge", h.adminKey, map[string]any{"source_customer_id": sourceID})
	h.want(r, 200, "")
	// The target's values win; it gains what only the source had.
	if r.body["name"] != "Ada Lovelace" || fmt.Sprint(r.body["custom_fields"]) != "map[region:eu tier:gold]" ||
		fmt.Sprint(r.body["tags"]) != "[vip old]" || fmt.Sprint(r.body["ticket_ids"]) != "["+ticket+"]" {
		t.Fatalf("merged customer: %s", r.raw)
	}
	// The source id and its email now resolve to the target; the ticket moved.
	if r := h.do("GET", "/v1/customers/"+sourceID, h.adminKey, nil); r.body["id"] != targetID {
		t.Errorf("source id resolves to %v, want %s", r.body["id"], targetID)
	}
	if r := h.do("GET", "/v1/customers?email=ada@example.com", h.adminKey, nil); !strings.Contains(r.raw, targetID) {
		t.Errorf("source email does not find the target: %s", r.raw)
	}
	r = h.do("GET", "/v1/tickets/"+ticket, h.adminKey, nil)
	if r.body["customer_id"] != targetID || r.body["customer"].(map[string]any)["name"] != "Ada Lovelace" {
		t.Errorf("ticket after merge: %s", r.raw)
	}
	if r := h.do("GET", "/v1/tickets/"+ticket+"/audit", h.adminKey, nil); !strings.Contains(r.raw, "ticket.customer_changed") {
		t.Errorf("ticket history does not show the merge: %s", r.raw)
	}
	// A new ticket for the source's email goes to the target.
	r = h.do("POST", "/v1/tickets", h.adminKey, map[string]any{"subject": "again", "customer": map[string]any{"email": "ada@example.com"}, "message": map[string]any{"body": "hi"}})
	if r.body["customer_id"] != targetID {
		t.Errorf("new ticket for the merged email went to %v", r.body["customer_id"])
	}
	// A merged customer cannot change or be merged again.
	h.want(h.do("POST", "/v1/customers/"+targetID+"/merge", h.adminKey, map[string]any{"source_customer_id": sourceID}), 409, "conflict")

	// PATCHing an email to one another customer holds merges the two.
	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "dup@example.com", "name": "Dup", "tags": []string{"dup"}})
	dupID := r.body["id"].(string)
	r = h.do("PATCH", "/v1/customers/"+dupID, h.adminKey, map[string]any{"email": "ADA.lovelace@example.com", "name": "ignored? no: applied"})
	h.want(r, 200, "")
	if r.body["id"] != targetID || !strings.Contains(fmt.Sprint(r.body["tags"]), "dup") {
		t.Errorf("email PATCH to a held email: %s", r.raw)
	}
	// PATCHing to a free email just changes it; the old one is released.
	r = h.do("PATCH", "/v1/customers/"+targetID, h.adminKey, map[string]any{"email": "ada@lovelace.org"}, "If-Match", fmt.Sprintf(`"%v"`, r.body["version"]))
	h.want(r, 200, "")
	if r.body["email"] != "ada@lovelace.org" {
		t.Errorf("email not changed: %s", r.raw)
	}
	if r := h.do("GET", "/v1/customers?email=ada.lovelace@example.com", h.adminKey, nil); strings.Contains(r.raw, targetID) {
		t.Errorf("the old email still finds the customer: %s", r.raw)
	}
	h.want(h.do("PATCH", "/v1/customers/"+targetID, h.adminKey, map[string]any{"name": "x"}, "If-Match", `"1"`), 412, "precondition_failed")
}

func TestServer_CustomerList(t *testing.T) {
	h := newHarness(t)
	h.want(h.do("GET", "/v1/customers?custom_fields.a=1&custom_fields.b=2&limit=0", h.adminKey, nil), 400, "validation_failed")
	// The list comes from the read model; with no projector running in
	// this harness it is empty, but the query runs against ClickHouse.
	r := h.do("GET", "/v1/customers?tag=vip&custom_fields.tier=gold&limit=10", h.adminKey, nil)
	h.want(r, 200, "")
	if r.raw != `{"data":[],"next_cursor":null}`+"\n" {
		t.Errorf("list: %s", r.raw)
	}
}

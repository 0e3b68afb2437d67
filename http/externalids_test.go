package http_test

import (
	"fmt"
	"sync"
	"testing"
)

// Sync by external id: a ticket's external_id names one ticket per
// workspace (409 naming it, or an update with ?upsert=true), and the list
// finds it at once, from the write side.
func TestServer_TicketExternalID(t *testing.T) {
	h := newHarness(t)
	body := func(subject string) map[string]any {
		return map[string]any{"subject": subject, "customer": map[string]any{"email": "ext@example.com"},
			"message": map[string]any{"body": "hi"}, "external_id": "crm-42"}
	}
	r := h.do("POST", "/v1/tickets", h.adminKey, body("First"))
	h.want(r, 201, "")
	id := r.body["id"].(string)

	r = h.do("POST", "/v1/tickets", h.adminKey, body("Second"))
	h.want(r, 409, "conflict")
	if e := r.body["error"].(map[string]any); e["existing_id"] != id {
		t.Fatalf("409 does not name the existing ticket %s: %s", id, r.raw)
	}

	up := body("Renamed")
	up["priority"], up["tags"] = "high", []string{"synced"}
	r = h.do("POST", "/v1/tickets?upsert=true", h.adminKey, up)
	h.want(r, 200, "")
	if r.body["id"] != id || r.body["subject"] != "Renamed" || r.body["priority"] != "high" || fmt.Sprint(r.body["tags"]) != "[synced]" {
		t.Fatalf("upsert: %s", r.raw)
	}
	h.want(h.do("POST", "/v1/tickets?upsert=maybe", h.adminKey, up), 400, "validation_failed")

	// Found at once (no projection lag), exactly, within the workspace.
	r = h.do("GET", "/v1/tickets?external_id=crm-42", h.adminKey, nil)
	h.want(r, 200, "")
	if data := r.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id {
		t.Fatalf("find: %s", r.raw)
	}
	for _, q := range []string{"crm-4", "CRM-42"} {
		if r := h.do("GET", "/v1/tickets?external_id="+q, h.adminKey, nil); r.raw != `{"data":[],"next_cursor":null}`+"\n" {
			t.Errorf("external_id=%s: %s", q, r.raw)
		}
	}
	_, otherKey := h.newWorkspace()
	if r := h.do("GET", "/v1/tickets?external_id=crm-42", otherKey, nil); r.raw != `{"data":[],"next_cursor":null}`+"\n" {
		t.Errorf("another workspace finds it: %s", r.raw)
	}
	// Another workspace may use the same external id.
	h.want(h.do("POST", "/v1/tickets", otherKey, body("Theirs")), 201, "")

	// A batch answers each item: the taken id is that item's 409.
	r = h.do("POST", "/v1/batch/tickets", h.adminKey, map[string]any{"items": []any{body("Again"),
		map[string]any{"subject": "New", "customer": map[string]any{"email": "ext@example.com"}, "message": map[string]any{"body": "hi"}, "external_id": "crm-43"}}})
	h.want(r, 200, "")
	res := results(t, r, 2)
	first, second := res[0], res[1]
	if first["status"] != 409.0 || first["error"].(map[string]any)["existing_id"] != id || second["status"] != 201.0 {
		t.Fatalf("batch: %s", r.raw)
	}
}

// Two concurrent creates with one external id: exactly one creates.
func TestServer_TicketExternalIDRace(t *testing.T) {
	h := newHarness(t)
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Different customers, so the creates do not share a group.
			r := h.do("POST", "/v1/tickets", h.adminKey, map[string]any{"subject": "Race",
				"customer": map[string]any{"email": fmt.Sprintf("c%d@example.com", i)}, "message": map[string]any{"body": "hi"}, "external_id": "same"})
			statuses[i] = r.status
		}()
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case 201:
			created++
		case 409:
		default:
			t.Errorf("status %d", s)
		}
	}
	if created != 1 {
		t.Fatalf("%d creates with one external id succeeded (%v), want 1", created, statuses)
	}
}

func TestServer_CustomerExternalID(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "ada@example.com", "external_id": "u-1"})
	h.want(r, 201, "")
	id := r.body["id"].(string)
	if r.body["external_id"] != "u-1" {
		t.Fatalf("created: %s", r.raw)
	}
	// The same id again, under any email: 409 naming the holder.
	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": email, "external_id": "u-1"})
		h.want(r, 409, "conflict")
		if r.body["error"].(map[string]any)["existing_id"] != id {
			t.Fatalf("%s: %s", email, r.raw)
		}
	}
	if h.do("GET", "/v1/customers?email=bob@example.com", h.adminKey, nil).raw != `{"data":[],"next_cursor":null}`+"\n" {
		t.Error("a refused create left a customer behind")
	}
	// With upsert the holder takes the fields.
	r = h.do("POST", "/v1/customers?upsert=true", h.adminKey, map[string]any{"email": "bob@example.com", "external_id": "u-1", "name": "Ada L."})
	h.want(r, 200, "")
	if r.body["id"] != id || r.body["name"] != "Ada L." || r.body["email"] != "ada@example.com" {
		t.Fatalf("upsert: %s", r.raw)
	}
	if h.do("GET", "/v1/customers?email=bob@example.com", h.adminKey, nil).raw != `{"data":[],"next_cursor":null}`+"\n" {
		t.Error("an upsert of another customer left a customer behind")
	}
	// An existing customer without one gets it; one with another keeps it.
	h.want(h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "cy@example.com"}), 201, "")
	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "cy@example.com", "external_id": "u-2"})
	h.want(r, 200, "")
	cy := r.body["id"].(string)
	if r.body["external_id"] != "u-2" {
		t.Fatalf("gained: %s", r.raw)
	}
	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "cy@example.com", "external_id": "u-3"})
	h.want(r, 409, "conflict")
	// Found by its own external id (the linked-profile lookup unchanged).
	for q, want := range map[string]string{"external_id=u-1": id, "external_id=u-2": cy} {
		r = h.do("GET", "/v1/customers?"+q, h.adminKey, nil)
		if data := r.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != want {
			t.Errorf("find %s: %s", q, r.raw)
		}
	}
	if r := h.do("GET", "/v1/customers?external_id=u-3", h.adminKey, nil); r.raw != `{"data":[],"next_cursor":null}`+"\n" {
		t.Errorf("u-3 was refused but is found: %s", r.raw)
	}
	// A batch: the taken id is that item's 409.
	r = h.do("POST", "/v1/batch/customers", h.adminKey, map[string]any{"items": []any{
		map[string]any{"email": "dee@example.com", "external_id": "u-1"}, map[string]any{"email": "eve@example.com", "external_id": "u-4"}}})
	h.want(r, 200, "")
	res := results(t, r, 2)
	if a, b := res[0], res[1]; a["status"] != 409.0 || a["error"].(map[string]any)["existing_id"] != id || b["status"] != 201.0 {
		t.Fatalf("batch: %s", r.raw)
	}
}

package http_test

import (
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// asOfTime is t as an as_of value, with every digit the API accepts.
func asOfTime(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }

// writtenTicket is a ticket as one write answered it: its state right after
// that write.
type writtenTicket struct {
	version int
	at      time.Time
	body    map[string]any
}

func TestTicketAsOf_StateAtEachPoint(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	h, _ := newHarness(t).withSLAClock(clock)
	var written []writtenTicket
	record := func(r response, status int) string {
		t.Helper()
		h.want(r, status, "")
		written = append(written, writtenTicket{version: int(r.body["version"].(float64)), at: clock.Now(), body: r.body})
		clock.Advance(time.Minute)
		return r.body["id"].(string)
	}
	id := record(h.do("POST", "/v1/tickets", h.adminKey, map[string]any{"subject": "Printer on fire",
		"customer": map[string]any{"email": "ada@example.com", "name": "Ada"}, "message": map[string]any{"body": "<p>Help</p>"}}), 201)
	path := "/v1/tickets/" + id
	record(h.do("PATCH", path+"?include_internal=true", h.adminKey, map[string]any{"priority": "high", "tags_add": []string{"fire"}}), 200)
	record(h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "On our way", "author_type": "agent"}), 201)
	record(h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "Call the fire brigade", "internal": true}), 201)
	record(h.do("PATCH", path+"?include_internal=true", h.adminKey, map[string]any{"status": "pending", "subject": "Printer was on fire"}), 200)
	record(h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "Thanks!", "author_type": "customer"}), 201)
	for i, w := range written {
		if w.version != i+1 {
			t.Fatalf("write %d made version %d: one event per write expected", i, w.version)
		}
	}
	// The customer changes afterwards: reads as of earlier show the old name.
	customerID := written[0].body["customer"].(map[string]any)["id"].(string)
	h.want(h.do("PATCH", "/v1/customers/"+customerID, h.adminKey, map[string]any{"name": "Ada Lovelace"}), 200, "")
	if r := h.do("GET", path, h.adminKey, nil); r.body["customer"].(map[string]any)["name"] != "Ada Lovelace" {
		t.Fatalf("current customer: %s", r.raw)
	}

	audit := h.do("GET", path+"/audit?include_internal=true", h.adminKey, nil)
	h.want(audit, 200, "")
	entries := audit.body["data"].([]any)
	if len(entries) != len(written) {
		t.Fatalf("audit has %d entries, want %d", len(entries), len(written))
	}
	for i, w := range written {
		for name, asOf := range map[string]string{
			"version":         fmt.Sprint(w.version),
			"time":            asOfTime(w.at),
			"before the next": asOfTime(w.at.Add(59 * time.Second)),
			// The audit's time of the version's event.
			"audit time": url.QueryEscape(entries[i].(map[string]any)["occurred_at"].(string)),
		} {
			r := h.do("GET", path+"?include_internal=true&as_of="+asOf, h.adminKey, nil)
			h.want(r, 200, "")
			if !reflect.DeepEqual(r.body, w.body) {
				t.Errorf("as of %s %s:\n got %s\nwant %v", name, asOf, r.raw, w.body)
			}
			if got, want := r.header.Get("ETag"), fmt.Sprintf("%q", fmt.Sprint(w.version)); got != want {
				t.Errorf("as of %s %s: ETag %s, want %s", name, asOf, got, want)
			}
		}
	}

	// Agents never see the internal note (version 4), as of any point.
	agent := h.agentKey()
	for _, asOf := range []string{"4", "6", asOfTime(written[3].at)} {
		r := h.do("GET", path+"?as_of="+asOf, agent, nil)
		h.want(r, 200, "")
		for _, m := range r.body["messages"].([]any) {
			if m.(map[string]any)["internal"] == true {
				t.Errorf("as of %s an agent sees an internal note: %s", asOf, r.raw)
			}
		}
		if got := len(r.body["messages"].([]any)); asOf == "4" && got != 2 {
			t.Errorf("as of 4 an agent sees %d messages, want 2: %s", got, r.raw)
		}
		h.want(h.do("GET", path+"?include_internal=true&as_of="+asOf, agent, nil), 403, "forbidden")
	}
	// Without as_of the read is the current one.
	if r := h.do("GET", path+"?as_of=", h.adminKey, nil); r.body["version"] != float64(len(written)) {
		t.Errorf("empty as_of: %s", r.raw)
	}
}

func TestTicketAsOf_SLAAtThatTime(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	h, worker := newHarness(t).withSLAClock(clock)
	h.want(h.do("POST", "/v1/sla-policies", h.adminKey, map[string]any{"name": "Everyone",
		"first_response": map[string]any{"minutes": 30, "warn_before_minutes": 5}}), 201, "")
	r := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Broken"))
	h.want(r, 201, "")
	path := "/v1/tickets/" + r.body["id"].(string)
	created := int(r.body["version"].(float64))
	clock.Advance(26 * time.Minute)
	if _, err := worker.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(9 * time.Minute) // 09:35, past due
	if _, err := worker.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fr := slaTarget(t, h.do("GET", path, h.adminKey, nil), "first_response"); fr["state"] != "breached" {
		t.Fatalf("now: %v", fr)
	}
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		asOf  string
		state string
	}{
		{fmt.Sprint(created), "active"},
		{asOfTime(base.Add(10 * time.Minute)), "active"},
		{asOfTime(base.Add(25*time.Minute + 30*time.Second)), "warning"},
		{asOfTime(base.Add(29 * time.Minute)), "warning"},
		{asOfTime(base.Add(31 * time.Minute)), "breached"},
	} {
		r := h.do("GET", path+"?as_of="+c.asOf, h.adminKey, nil)
		h.want(r, 200, "")
		if fr := slaTarget(t, r, "first_response"); fr["state"] != c.state || fr["due_at"] != "2026-03-02T09:30:00.000Z" {
			t.Errorf("as of %s: %v, want state %s", c.asOf, fr, c.state)
		}
	}
}

func TestCustomerAsOf_Merge(t *testing.T) {
	h := newHarness(t)
	// mark returns a time after every write so far and before the next.
	mark := func() time.Time { t.Helper(); return time.Now() }
	r := h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "ada@example.com", "name": "Ada", "tags": []string{"a"}})
	h.want(r, 201, "")
	source := r.body["id"].(string)
	r = h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "grace@example.com", "name": "Grace"})
	h.want(r, 201, "")
	target := r.body["id"].(string)
	beforeTicket := mark()
	r = h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Refund"))
	h.want(r, 201, "")
	ticket := r.body["id"].(string)
	h.want(h.do("PATCH", "/v1/customers/"+source, h.adminKey, map[string]any{"name": "Ada L."}), 200, "")
	beforeMerge := mark()
	h.want(h.do("POST", "/v1/customers/"+target+"/merge", h.adminKey, map[string]any{"source_customer_id": source}), 200, "")
	afterMerge := mark()

	customer := func(id, asOf string) map[string]any {
		t.Helper()
		r := h.do("GET", "/v1/customers/"+id+"?as_of="+asOf, h.adminKey, nil)
		h.want(r, 200, "")
		return r.body
	}
	ids := func(c map[string]any) string { return fmt.Sprint(c["ticket_ids"]) }
	if c := customer(source, asOfTime(beforeTicket)); c["id"] != source || c["name"] != "Ada" || ids(c) != "[]" {
		t.Errorf("source before its ticket: %v", c)
	}
	if c := customer(source, asOfTime(beforeMerge)); c["id"] != source || c["name"] != "Ada L." || ids(c) != "["+ticket+"]" {
		t.Errorf("source before the merge: %v", c)
	}
	if c := customer(source, "1"); c["id"] != source || c["name"] != "Ada" || c["version"] != float64(1) {
		t.Errorf("source at version 1: %v", c)
	}
	if c := customer(target, asOfTime(beforeMerge)); c["id"] != target || ids(c) != "[]" {
		t.Errorf("target before the merge: %v", c)
	}
	// After the merge the source's id resolves to the target, as of then
	// and now (without as_of).
	for _, c := range []map[string]any{customer(source, asOfTime(afterMerge)), h.do("GET", "/v1/customers/"+source, h.adminKey, nil).body} {
		if c["id"] != target || c["name"] != "Grace" || ids(c) != "["+ticket+"]" {
			t.Errorf("source after the merge: %v", c)
		}
	}
	// The ticket's customer as of each time.
	for asOf, want := range map[string]string{asOfTime(beforeMerge): source, asOfTime(afterMerge): target} {
		r := h.do("GET", "/v1/tickets/"+ticket+"?as_of="+asOf, h.adminKey, nil)
		h.want(r, 200, "")
		if got := r.body["customer"].(map[string]any)["id"]; got != want {
			t.Errorf("ticket as of %s: customer %v, want %s", asOf, got, want)
		}
	}
}

func TestAsOf_Refusals(t *testing.T) {
	h := newHarness(t)
	before := time.Now()
	ticket := h.newTicket(h.adminKey)
	r := h.do("GET", "/v1/tickets/"+ticket, h.adminKey, nil)
	customer := r.body["customer"].(map[string]any)["id"].(string)
	for _, path := range []string{"/v1/tickets/" + ticket, "/v1/customers/" + customer} {
		// Before the entity existed.
		h.want(h.do("GET", path+"?as_of="+asOfTime(before), h.adminKey, nil), 404, "not_found")
		for _, bad := range []string{"abc", "0", "-1", "1.5", "2026-13-01T00:00:00Z", "2026-01-02", "99999999999999999999",
			asOfTime(time.Now().Add(time.Hour)), "2"} {
			r := h.do("GET", path+"?as_of="+bad, h.adminKey, nil)
			h.want(r, 400, "validation_failed")
			if d := details(t, r); d["as_of"] == "" || len(d) != 1 {
				t.Errorf("%s?as_of=%s: details %v, want as_of only", path, bad, d)
			}
		}
		// An unencoded '+' of an offset arrives as a space, and still reads.
		h.want(h.do("GET", path+"?as_of="+time.Now().UTC().Format("2006-01-02T15:04:05.999999999")+"+00:00", h.adminKey, nil), 200, "")
		// Another workspace's id is not found, as of any point.
		_, otherKey := h.newWorkspace()
		h.want(h.do("GET", path+"?as_of=1", otherKey, nil), 404, "not_found")
		h.want(h.do("GET", path+"?as_of="+asOfTime(time.Now()), otherKey, nil), 404, "not_found")
	}
	// A ticket's id is not a customer's, and an unknown id is not found.
	h.want(h.do("GET", "/v1/customers/"+ticket+"?as_of=1", h.adminKey, nil), 404, "not_found")
	h.want(h.do("GET", "/v1/tickets/"+customer+"?as_of=1", h.adminKey, nil), 404, "not_found")
	h.want(h.do("GET", "/v1/tickets/"+uuid.NewString()+"?as_of=1", h.adminKey, nil), 404, "not_found")
}

func TestTicketAudit_VersionRange(t *testing.T) {
	h := newHarness(t)
	id := h.newTicket(h.adminKey)
	path := "/v1/tickets/" + id
	for _, p := range []string{"high", "low", "urgent"} {
		h.want(h.do("PATCH", path, h.adminKey, map[string]any{"priority": p}), 200, "")
	}
	h.want(h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "note", "internal": true}), 201, "") // version 5
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"status": "open"}), 200, "")                            // version 6
	versions := func(query, key string) string {
		t.Helper()
		r := h.do("GET", path+"/audit?"+query, key, nil)
		h.want(r, 200, "")
		var got []int
		for _, e := range r.body["data"].([]any) {
			got = append(got, int(e.(map[string]any)["version"].(float64)))
		}
		return fmt.Sprint(got)
	}
	agent := h.agentKey()
	for _, c := range []struct{ query, key, want string }{
		{"", h.adminKey, "[1 2 3 4 6]"},
		{"include_internal=true", h.adminKey, "[1 2 3 4 5 6]"},
		{"from_version=2&to_version=4", h.adminKey, "[2 3 4]"},
		{"from_version=3&to_version=3", h.adminKey, "[3]"},
		{"from_version=4", h.adminKey, "[4 6]"},
		{"to_version=2", h.adminKey, "[1 2]"},
		{"from_version=4&to_version=9&include_internal=true", h.adminKey, "[4 5 6]"},
		{"from_version=7", h.adminKey, "[]"},
		{"from_version=4&to_version=6", agent, "[4 6]"},
	} {
		if got := versions(c.query, c.key); got != c.want {
			t.Errorf("audit?%s: versions %s, want %s", c.query, got, c.want)
		}
	}
	for query, fields := range map[string]string{
		"from_version=0":                 "[from_version]",
		"to_version=abc":                 "[to_version]",
		"from_version=-2&to_version=1.5": "[from_version to_version]",
		"from_version=5&to_version=3":    "[from_version]",
	} {
		r := h.do("GET", path+"/audit?"+query, h.adminKey, nil)
		h.want(r, 400, "validation_failed")
		var got []string
		for _, f := range []string{"from_version", "to_version"} {
			if details(t, r)[f] != "" {
				got = append(got, f)
			}
		}
		if fmt.Sprint(got) != fields || len(details(t, r)) != len(got) {
			t.Errorf("audit?%s: details %v, want %s", query, details(t, r), fields)
		}
	}
	_, otherKey := h.newWorkspace()
	h.want(h.do("GET", path+"/audit?from_version=1&to_version=2", otherKey, nil), 404, "not_found")
}

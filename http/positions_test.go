package http_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
)

// positionOf is a response's X-HDF-Position, failing the test without one.
func positionOf(t *testing.T, r response) string {
	t.Helper()
	token := r.header.Get("X-HDF-Position")
	if token == "" {
		t.Fatalf("%d %s: no X-HDF-Position", r.status, r.raw)
	}
	return token
}

// problemFields are the fields a validation error names.
func problemFields(r response) []string {
	e, _ := r.body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	var fields []string
	for _, d := range details {
		if m, ok := d.(map[string]any); ok {
			fields = append(fields, m["field"].(string))
		}
	}
	slices.Sort(fields)
	return fields
}

// listed reports whether a list answer holds the item with id.
func listed(r response, id string) bool {
	data, _ := r.body["data"].([]any)
	return slices.ContainsFunc(data, func(item any) bool { return item.(map[string]any)["id"] == id })
}

// TestPositions_EveryWriteCarriesOne: the answers of the routes that append
// events carry X-HDF-Position (singles and batches), reads do not, and
// each write's token is its own.
func TestPositions_EveryWriteCarriesOne(t *testing.T) {
	h := newHarness(t)
	admin := h.adminKey
	created := h.do("POST", "/v1/tickets", admin, ticketBody("positions"))
	h.want(created, 201, "")
	ticket := created.body["id"].(string)
	customer := h.do("POST", "/v1/customers", admin, map[string]any{"email": "pos@example.com"})
	h.want(customer, 201, "")
	other := h.do("POST", "/v1/customers", admin, map[string]any{"email": "pos-other@example.com"})
	h.want(other, 201, "")
	writes := []response{created, customer, other,
		h.do("PATCH", "/v1/tickets/"+ticket, admin, map[string]any{"priority": "high"}),
		h.do("POST", "/v1/tickets/"+ticket+"/messages", admin, map[string]any{"body": "more"}),
		h.do("PATCH", "/v1/customers/"+customer.body["id"].(string), admin, map[string]any{"name": "Pos"}),
		h.do("POST", "/v1/customers/"+customer.body["id"].(string)+"/merge", admin, map[string]any{"source_customer_id": other.body["id"]}),
		h.do("POST", "/v1/batch/tickets", admin, map[string]any{"items": []any{ticketBody("batched")}}),
		h.do("POST", "/v1/batch/customers", admin, map[string]any{"items": []any{map[string]any{"email": "batched@example.com"}}}),
	}
	seen := map[string]bool{}
	for i, r := range writes {
		if r.status >= 300 {
			t.Fatalf("write %d: %d %s", i, r.status, r.raw)
		}
		token := positionOf(t, r)
		if seen[token] {
			t.Errorf("write %d repeats an earlier token", i)
		}
		seen[token] = true
	}
	if r := h.do("GET", "/v1/tickets/"+ticket, admin, nil); r.header.Get("X-HDF-Position") != "" {
		t.Errorf("GET one ticket carries a position: %s", r.header.Get("X-HDF-Position"))
	}
	// A write refused before it appends anything carries none.
	if r := h.do("PATCH", "/v1/tickets/"+ticket, admin, map[string]any{"priority": "whenever"}); r.status != 400 || r.header.Get("X-HDF-Position") != "" {
		t.Errorf("refused PATCH: %d with position %q", r.status, r.header.Get("X-HDF-Position"))
	}
}

// TestPositions_ReadYourWrites: create, then list with the create's
// position, and see it, in the ticket and the customer lists; an update
// too. Each write's events go to one or two of the topic's four
// partitions: the others reach its position only through the relay's
// watermarks.
func TestPositions_ReadYourWrites(t *testing.T) {
	h := newHarness(t)
	rm := withReadModels(t, h)
	admin := h.adminKey

	created := rm.do("POST", "/v1/tickets", admin, map[string]any{"subject": "see me", "tags": []string{"ryw"},
		"customer": map[string]any{"email": "ryw@example.com"}, "message": map[string]any{"body": "b"}})
	h.want(created, 201, "")
	ticket := created.body["id"].(string)
	list := rm.do("GET", "/v1/tickets?tag=ryw&max_wait=10&min_position="+url.QueryEscape(positionOf(t, created)), admin, nil)
	h.want(list, 200, "")
	if !listed(list, ticket) {
		t.Fatalf("the list after min_position does not show the ticket just created: %s", list.raw)
	}
	positionOf(t, list)

	customers := rm.do("GET", "/v1/customers?max_wait=10&min_position="+url.QueryEscape(positionOf(t, created)), admin, nil)
	h.want(customers, 200, "")
	if !listed(customers, created.body["customer"].(map[string]any)["id"].(string)) {
		t.Errorf("the customer list after min_position does not show the ticket's new customer: %s", customers.raw)
	}

	closed := rm.do("PATCH", "/v1/tickets/"+ticket, admin, map[string]any{"status": "solved"})
	h.want(closed, 200, "")
	list = rm.do("GET", "/v1/tickets?status=solved&tag=ryw&max_wait=10&min_position="+url.QueryEscape(positionOf(t, closed)), admin, nil)
	h.want(list, 200, "")
	if !listed(list, ticket) {
		t.Errorf("the list of solved tickets after min_position does not show the ticket just solved: %s", list.raw)
	}
}

// TestPositions_WaitsForThePausedProjector: while the projector is paused
// a list with a write's position waits max_wait and answers 503
// projection_behind with Retry-After and the read model's position; once
// the projector runs, a list that waits sees the write.
func TestPositions_WaitsForThePausedProjector(t *testing.T) {
	h := newHarness(t)
	rm, startProjector := withPausedReadModels(t, h)
	admin := h.adminKey
	created := rm.do("POST", "/v1/tickets", admin, ticketBody("paused"))
	h.want(created, 201, "")
	query := "/v1/tickets?min_position=" + url.QueryEscape(positionOf(t, created))

	behind := rm.do("GET", query+"&max_wait=0.2", admin, nil)
	h.want(behind, 503, helpdeskflow.EProjectionBehind)
	if behind.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q, want 1", behind.header.Get("Retry-After"))
	}
	positionOf(t, behind)

	waited := make(chan response, 1)
	go func() { waited <- rm.do("GET", query+"&max_wait=10", admin, nil) }()
	startProjector()
	r := <-waited
	h.want(r, 200, "")
	if !listed(r, created.body["id"].(string)) {
		t.Errorf("the list that waited does not show the ticket: %s", r.raw)
	}
}

// TestPositions_RefusesForeignAndTamperedTokens: a token is good only for
// the workspace it was given to, unchanged; bad min_position and max_wait
// values are 400 naming the field, all at once.
func TestPositions_RefusesForeignAndTamperedTokens(t *testing.T) {
	h := newHarness(t)
	created := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("mine"))
	h.want(created, 201, "")
	token := positionOf(t, created)
	_, otherKey := h.newWorkspace()

	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == '-' || tampered[len(tampered)/2] == '_' {
		tampered[len(tampered)/2] = 'A'
	}
	for name, c := range map[string]struct {
		key, query string
		fields     []string
	}{
		"another workspace's": {otherKey, "min_position=" + url.QueryEscape(token), []string{"min_position"}},
		"tampered":            {h.adminKey, "min_position=" + url.QueryEscape(string(tampered)), []string{"min_position"}},
		"truncated":           {h.adminKey, "min_position=" + url.QueryEscape(token[:len(token)-4]), []string{"min_position"}},
		"empty":               {h.adminKey, "min_position=", []string{"min_position"}},
		"not base64":          {h.adminKey, "min_position=%2A%2A%2A", []string{"min_position"}},
		"negative wait":       {h.adminKey, "max_wait=-1", []string{"max_wait"}},
		"too long a wait":     {h.adminKey, "max_wait=10.5", []string{"max_wait"}},
		"not a number":        {h.adminKey, "max_wait=soon", []string{"max_wait"}},
		"both, with a limit":  {h.adminKey, "max_wait=NaN&min_position=x&limit=0", []string{"limit", "max_wait", "min_position"}},
	} {
		for _, path := range []string{"/v1/tickets?", "/v1/customers?"} {
			r := h.do("GET", path+c.query, c.key, nil)
			h.want(r, 400, helpdeskflow.EValidation)
			if got := problemFields(r); !slices.Equal(got, c.fields) {
				t.Errorf("%s, %s: fields %v, want %v (%s)", name, path, got, c.fields, r.raw)
			}
		}
	}
	// The workspace it belongs to may use it (here without waiting: the
	// harness's read model does not move).
	h.want(h.do("GET", "/v1/tickets?max_wait=0&min_position="+url.QueryEscape(token), h.adminKey, nil), 503, helpdeskflow.EProjectionBehind)
}

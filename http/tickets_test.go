package http_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// newTicket creates a ticket through the API and returns its id.
func (h *harness) newTicket(key string) string {
	h.t.Helper()
	r := h.do("POST", "/v1/tickets", key, map[string]any{
		"subject": "Printer on fire", "customer": map[string]any{"email": "ada@example.com", "name": "Ada"},
		"message": map[string]any{"body": "<p>It is <b>really</b> on fire</p>"}, "tags": []string{"hardware"},
		"custom_fields": map[string]any{"floor": 3},
	})
	h.want(r, 201, "")
	return r.body["id"].(string)
}

func TestServer_TicketUpdate(t *testing.T) {
	h := newHarness(t)
	id := h.newTicket(h.adminKey)
	path := "/v1/tickets/" + id

	// Validation lists every problem.
	r := h.do("PATCH", path, h.adminKey, map[string]any{"priority": "critical", "status": "done", "subject": " ", "tags_add": []string{"a b"}, "custom_fields": map[string]any{"x": []int{1}}})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{`"priority"`, `"status"`, `"subject"`, `"tags_add[0]"`, `"custom_fields.x"`} {
		if !strings.Contains(r.raw, field) {
			t.Errorf("error does not name %s: %s", field, r.raw)
		}
	}
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"priorty": "high"}), 400, "validation_failed")

	r = h.do("PATCH", path, h.adminKey, map[string]any{
		"priority": "high", "status": "open", "assignee_id": "agent-7", "team": "support",
		"tags_add": []string{"urgent", "hardware"}, "tags_remove": []string{"nothing"}, "custom_fields": map[string]any{"floor": nil, "building": "B"},
	}, "If-Match", `"1"`)
	h.want(r, 200, "")
	if r.header.Get("ETag") != `"2"` || r.body["version"] != 2.0 || r.body["priority"] != "high" || r.body["assignee_id"] != "agent-7" ||
		fmt.Sprint(r.body["tags"]) != "[hardware urgent]" || fmt.Sprint(r.body["custom_fields"]) != "map[building:B]" {
		t.Fatalf("after PATCH: %v %s", r.header.Get("ETag"), r.raw)
	}
	// The same PATCH again changes nothing and appends nothing.
	r = h.do("PATCH", path, h.adminKey, map[string]any{"priority": "high", "team": "support"})
	h.want(r, 200, "")
	if r.body["version"] != 2.0 {
		t.Errorf("a no-op PATCH moved the version to %v", r.body["version"])
	}
	// A stale If-Match is 412; a malformed one 400.
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"priority": "low"}, "If-Match", `"1"`), 412, "precondition_failed")
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"priority": "low"}, "If-Match", `"one"`), 400, "validation_failed")
	// Clearing a nullable field.
	r = h.do("PATCH", path, h.adminKey, map[string]any{"assignee_id": nil})
	h.want(r, 200, "")
	if r.body["assignee_id"] != nil || r.body["version"] != 3.0 {
		t.Errorf("assignee not cleared: %s", r.raw)
	}

	// The lifecycle: open → new is refused, naming the allowed statuses;
	// solved → closed is final.
	r = h.do("PATCH", path, h.adminKey, map[string]any{"status": "new"})
	h.want(r, 400, "validation_failed")
	if !strings.Contains(r.raw, "pending, on_hold, solved") {
		t.Errorf("lifecycle error does not list the allowed statuses: %s", r.raw)
	}
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"status": "closed"}), 400, "validation_failed")
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"status": "solved"}), 200, "")
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"status": "closed"}), 200, "")
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"priority": "low"}), 409, "conflict")
	h.want(h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "hello?"}), 409, "conflict")
	h.want(h.do("PATCH", "/v1/tickets/00000000-0000-0000-0000-000000000001", h.adminKey, map[string]any{"priority": "low"}), 404, "not_found")

	// The audit shows every change with old and new values, actor and request.
	r = h.do("GET", path+"/audit", h.adminKey, nil)
	h.want(r, 200, "")
	entries := r.body["data"].([]any)
	if len(entries) != 5 {
		t.Fatalf("audit has %d entries, want 5 (created, 2 updates, solved, closed): %s", len(entries), r.raw)
	}
	second := entries[1].(map[string]any)
	changes := fmt.Sprint(second["changes"])
	for _, want := range []string{"field:priority new:high old:normal", "field:custom_fields.floor new:<nil> old:3", "field:status new:open old:new", "field:tags new:[hardware urgent] old:[hardware]"} {
		if !strings.Contains(changes, want) {
			t.Errorf("audit entry 2 lacks %q: %s", want, changes)
		}
	}
	if second["version"] != 2.0 || second["event_type"] != "ticket.updated" || second["channel"] != "api" ||
		second["actor"].(map[string]any)["type"] != "api_key" || second["request_id"] == nil {
		t.Errorf("audit entry 2: %v", second)
	}
}

func TestServer_TicketUpdatesConcurrently(t *testing.T) {
	h := newHarness(t)
	id := h.newTicket(h.adminKey)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.do("PATCH", "/v1/tickets/"+id, h.adminKey, map[string]any{"tags_add": []string{fmt.Sprintf("t%d", i)}})
			if r.status != 200 {
				t.Errorf("PATCH %d: %d %s", i, r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	r := h.do("GET", "/v1/tickets/"+id, h.adminKey, nil)
	if r.body["version"] != 21.0 || len(r.body["tags"].([]any)) != 21 {
		t.Fatalf("after 20 concurrent PATCHes: version %v, tags %v; want 21 and 21", r.body["version"], r.body["tags"])
	}
	events, err := h.store.Load(context.Background(), h.workspace, mustUUID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d: versions are not contiguous", i, e.Version)
		}
	}
}

func TestServer_Conversation(t *testing.T) {
	h := newHarness(t)
	id := h.newTicket(h.adminKey)
	r := h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent"})
	agent := r.body["key"].(string)
	path := "/v1/tickets/" + id

	h.want(h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": ""}), 400, "validation_failed")
	h.want(h.do("POST", path+"/messages", agent, map[string]any{"body": "secret", "internal": true}), 403, "forbidden")
	r = h.do("POST", path+"/messages", agent, map[string]any{"body": `<a href="javascript:alert(1)">we</a> are on it<script>x</script>`})
	h.want(r, 201, "")
	h.want(h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "customer is VIP", "internal": true}), 201, "")
	r = h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "thanks!", "author_type": "customer"})
	h.want(r, 201, "")
	if r.header.Get("ETag") != `"4"` {
		t.Errorf("ETag after three messages %q, want \"4\"", r.header.Get("ETag"))
	}

	// Oldest to newest; internal notes only for admins who ask.
	check := func(key, query string, want []string) {
		t.Helper()
		r := h.do("GET", path+query, key, nil)
		h.want(r, 200, "")
		var got []string
		for _, m := range r.body["messages"].([]any) {
			got = append(got, m.(map[string]any)["body_text"].(string))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s messages %q, want %q", query, got, want)
		}
	}
	public := []string{"It is really on fire", "we are on it", "thanks!"}
	check(h.adminKey, "", public)
	check(agent, "", public)
	check(h.adminKey, "?include_internal=true", []string{"It is really on fire", "we are on it", "customer is VIP", "thanks!"})
	h.want(h.do("GET", path+"?include_internal=true", agent, nil), 403, "forbidden")
	h.want(h.do("GET", path+"/audit?include_internal=true", agent, nil), 403, "forbidden")
	if r := h.do("GET", path+"/audit", agent, nil); strings.Contains(r.raw, "VIP") {
		t.Errorf("the audit shows an internal note to an agent: %s", r.raw)
	}
	r = h.do("GET", path, h.adminKey, nil)
	if strings.Contains(r.raw, "javascript") || strings.Contains(r.raw, "script>") {
		t.Errorf("unsanitized message: %s", r.raw)
	}

	// A customer reply reopens a solved ticket, in the same append.
	h.want(h.do("PATCH", path, h.adminKey, map[string]any{"status": "solved"}), 200, "")
	r = h.do("POST", path+"/messages", h.adminKey, map[string]any{"body": "it is on fire again", "author_type": "customer"})
	h.want(r, 201, "")
	if r.body["status"] != "open" {
		t.Errorf("a customer reply left the solved ticket %v", r.body["status"])
	}
}

func TestServer_EventFeed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.newTicket(h.adminKey)
	h.want(h.do("POST", "/v1/tickets/"+id+"/messages", h.adminKey, map[string]any{"body": "internal", "internal": true}), 201, "")
	h.want(h.do("GET", "/v1/events?after=nonsense&limit=0", h.adminKey, nil), 400, "validation_failed")
	// Another workspace's events never appear.
	_, other := h.newWorkspace()
	h.newTicket(other)

	// A transaction that appended and is still open holds the feed at the
	// commit horizon: what is after it waits, nothing is skipped.
	late := make(chan error, 1)
	holding := make(chan struct{})
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	// A failure before the release must not leave the transaction open:
	// the database's cleanup would wait for it for ever.
	t.Cleanup(releaseOnce)
	go func() {
		late <- h.store.DB.Transact(ctx, func(ptx *pg.Tx) error {
			tx := h.store.In(ptx)
			ref := helpdeskflow.StreamRef{ID: mustUUID(t, id), WorkspaceID: h.workspace, Type: helpdeskflow.StreamTicket}
			version, err := tx.LockStream(ctx, ref)
			if err != nil {
				return err
			}
			e, _ := helpdeskflow.NewEventOf(helpdeskflow.EventTicketMessageAdded, helpdeskflow.MessageAdded{Body: "late", BodyText: "late", AuthorType: "agent"})
			if _, err := tx.Append(ctx, ref, version, helpdeskflow.Metadata{Channel: "system"}, []helpdeskflow.NewEvent{e}); err != nil {
				return err
			}
			if _, err := access.In(ptx).ActiveAdminKeys(ctx, h.workspace); err != nil { // sends the append
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	h.newTicket(h.adminKey) // commits after the late one began

	var seen []string
	cursor := ""
	read := func(key string) {
		for {
			r := h.do("GET", "/v1/events?limit=2&after="+cursor, key, nil)
			h.want(r, 200, "")
			events := r.body["events"].([]any)
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				t.Fatalf("no next_cursor: %s", r.raw)
			}
			cursor = next
			for _, e := range events {
				e := e.(map[string]any)
				seen = append(seen, e["type"].(string))
			}
			if len(events) == 0 {
				return
			}
		}
	}
	// The commit horizon is cluster-wide: other databases' open
	// transactions may hold it back for a moment, so read until the
	// expected events have arrived (never more).
	readUntil := func(key, want string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			read(key)
			if got := strings.Join(seen, " "); got != want {
				if !strings.HasPrefix(want, got) {
					t.Fatalf("feed %q, want %q", got, want)
				}
				return fmt.Errorf("feed so far %q, want %q", got, want)
			}
			return nil
		})
	}
	// Workspace events, then the ticket and its customer, then the internal
	// note; the late transaction and what followed it are held back.
	readUntil(h.adminKey, "workspace.created api_key.created customer.created ticket.created ticket.message_added")
	releaseOnce()
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	seen = nil
	readUntil(h.adminKey, "ticket.message_added ticket.created")

	// An agent key does not see internal notes.
	r := h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent"})
	agent := r.body["key"].(string)
	cursor, seen = "", nil
	readUntil(agent, "customer.created ticket.created ticket.message_added ticket.created")
}

// TestServer_EventFeedByRole appends an event to a stream of every stream
// type (helpdeskflow.StreamTypes, which a root test keeps complete): admin
// keys read them all in the change feed, agent keys only those of tickets
// and customers. Configuration streams (webhook URLs with their tokens,
// rules, policies, keys, integrations) are admin-only.
func TestServer_EventFeedByRole(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	wantAgent := map[string]bool{helpdeskflow.StreamTicket: true, helpdeskflow.StreamCustomer: true}
	for _, streamType := range helpdeskflow.StreamTypes {
		ref := helpdeskflow.StreamRef{ID: uuid.New(), WorkspaceID: h.workspace, Type: streamType}
		e, err := helpdeskflow.NewEventOf(streamType+".probe", map[string]string{"url": "https://hooks.example/secret-token"})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.store.Transact(ctx, func(tx *eventstore.Tx) error {
			_, err := tx.Append(ctx, ref, 0, helpdeskflow.Metadata{Channel: helpdeskflow.ChannelSystem}, []helpdeskflow.NewEvent{e})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	agent := h.agentKey()
	probes := func(key string) map[string]bool {
		seen := map[string]bool{}
		testenv.Eventually(t, 10*time.Second, func() error {
			cursor := ""
			for {
				r := h.do("GET", "/v1/events?limit=1000&after="+cursor, key, nil)
				h.want(r, 200, "")
				events := r.body["events"].([]any)
				cursor, _ = r.body["next_cursor"].(string)
				for _, e := range events {
					e := e.(map[string]any)
					if typ := e["type"].(string); strings.HasSuffix(typ, ".probe") {
						seen[e["stream_type"].(string)] = true
					}
				}
				if len(events) == 0 {
					break
				}
			}
			// The admin sees every probe once the commit horizon passed them.
			if key == h.adminKey && len(seen) < len(helpdeskflow.StreamTypes) {
				return fmt.Errorf("admin sees probes of %v so far", seen)
			}
			return nil
		})
		return seen
	}
	probes(h.adminKey)
	seen := probes(agent)
	for _, streamType := range helpdeskflow.StreamTypes {
		if seen[streamType] != wantAgent[streamType] {
			t.Errorf("agent key sees %s events: %v, want %v", streamType, seen[streamType], wantAgent[streamType])
		}
	}
}

package http_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	commandaccess "github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/http"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
)

// ticketBody is a valid POST /v1/tickets body; subject tells scriptedTickets
// what to do.
func ticketBody(subject string) map[string]any {
	return map[string]any{"subject": subject, "customer": map[string]any{"email": "ada@example.com"}, "message": map[string]any{"body": "b"}}
}

// ticketsCreated counts the ticket.created events of workspace: how many
// times a create really ran.
func (h *harness) ticketsCreated(workspace uuid.UUID) int {
	h.t.Helper()
	var n int
	if err := h.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE workspace_id = $1 AND type = $2`,
		workspace, helpdeskflow.EventTicketCreated).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// keyRows counts the idempotency_keys rows of workspace named key.
func (h *harness) keyRows(workspace uuid.UUID, key string) int {
	h.t.Helper()
	var n int
	if err := h.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys WHERE workspace_id = $1 AND key = $2`,
		workspace, key).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// ageKey moves key's row back in time by interval (a Postgres interval).
func (h *harness) ageKey(workspace uuid.UUID, key, interval string) {
	h.t.Helper()
	if _, err := h.db.Pool().Exec(context.Background(), `UPDATE idempotency_keys SET created_at = created_at - $3::interval WHERE workspace_id = $1 AND key = $2`,
		workspace, key, interval); err != nil {
		h.t.Fatal(err)
	}
}

func replayed(r response) bool { return r.header.Get("Idempotent-Replayed") == "true" }

// wantReplayOf fails unless r replays first: same status and body, marked.
func (h *harness) wantReplayOf(r, first response) {
	h.t.Helper()
	if r.status != first.status || r.raw != first.raw || !replayed(r) {
		h.t.Fatalf("got %d (replayed %v) %s\nwant a replay of %d %s", r.status, replayed(r), r.raw, first.status, first.raw)
	}
}

func TestServer_IdempotencyKey(t *testing.T) {
	h := newHarness(t)
	ticket := ticketBody("Refund")

	t.Run("SameRequestReplays", func(t *testing.T) {
		first := h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "create-1")
		h.want(first, 201, "")
		if replayed(first) {
			t.Fatal("the first response is marked replayed")
		}
		before := h.ticketsCreated(h.workspace)
		again := h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "create-1")
		h.wantReplayOf(again, first)
		for _, name := range []string{"Content-Type", "ETag", "Location"} {
			if again.header.Get(name) != first.header.Get(name) {
				t.Errorf("replayed %s = %q, want %q", name, again.header.Get(name), first.header.Get(name))
			}
		}
		// The request id and rate limit are the retry's own.
		if again.header.Get("X-Request-Id") == first.header.Get("X-Request-Id") {
			t.Error("the replay has the first request's X-Request-Id")
		}
		if a, b := again.header.Get("X-RateLimit-Remaining"), first.header.Get("X-RateLimit-Remaining"); a == "" || a == b {
			t.Errorf("X-RateLimit-Remaining %q on the replay, %q first: want the retry's own", a, b)
		}
		if got := h.ticketsCreated(h.workspace); got != before {
			t.Fatalf("the replay created %d tickets", got-before)
		}
		if e := h.log.last(); e.Status != 201 || e.RequestID != again.header.Get("X-Request-Id") {
			t.Errorf("request log entry of the replay: %+v", e)
		}
		// The ticket is the one the first request created.
		h.want(h.do("GET", "/v1/tickets/"+first.body["id"].(string), h.adminKey, nil), 200, "")
	})

	t.Run("DifferentRequestIs422", func(t *testing.T) {
		h.want(h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "create-2"), 201, "")
		h.want(h.do("POST", "/v1/tickets", h.adminKey, ticketBody("Other"), "Idempotency-Key", "create-2"), 422, "idempotency_key_reused")
		h.want(h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent"}, "Idempotency-Key", "create-2"), 422, "idempotency_key_reused")
	})

	t.Run("PathIsPartOfTheRequest", func(t *testing.T) {
		a, b := h.newTicket(h.adminKey), h.newTicket(h.adminKey)
		patch := map[string]any{"priority": "high"}
		first := h.do("PATCH", "/v1/tickets/"+a, h.adminKey, patch, "Idempotency-Key", "patch-1")
		h.want(first, 200, "")
		h.wantReplayOf(h.do("PATCH", "/v1/tickets/"+a, h.adminKey, patch, "Idempotency-Key", "patch-1"), first)
		h.want(h.do("PATCH", "/v1/tickets/"+b, h.adminKey, patch, "Idempotency-Key", "patch-1"), 422, "idempotency_key_reused")
		h.want(h.do("PATCH", "/v1/tickets/"+a, h.adminKey, patch, "Idempotency-Key", "patch-1", "If-Match", `"2"`), 422, "idempotency_key_reused")
	})

	t.Run("ConcurrentRetriesCreateOnce", func(t *testing.T) {
		before := h.ticketsCreated(h.workspace)
		responses := make([]response, 20)
		var wg sync.WaitGroup
		for i := range responses {
			wg.Go(func() {
				responses[i] = h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "concurrent")
			})
		}
		wg.Wait()
		var created []response
		for _, r := range responses {
			if r.status == 201 && !replayed(r) {
				created = append(created, r)
			}
		}
		if len(created) != 1 {
			t.Fatalf("%d responses created the ticket, want 1", len(created))
		}
		for _, r := range responses {
			switch {
			case r.status == 409:
				h.want(r, 409, "idempotency_key_in_use")
			case replayed(r):
				h.wantReplayOf(r, created[0])
			case r.raw != created[0].raw:
				t.Errorf("unexpected response %d %s", r.status, r.raw)
			}
		}
		if got := h.ticketsCreated(h.workspace) - before; got != 1 {
			t.Fatalf("%d tickets created, want 1", got)
		}
	})

	t.Run("ValidationFailureIsKept", func(t *testing.T) {
		invalid := map[string]any{"subject": "", "customer": map[string]any{"email": "not an email"}, "message": map[string]any{"body": "b"}}
		first := h.do("POST", "/v1/tickets", h.adminKey, invalid, "Idempotency-Key", "invalid-1")
		h.want(first, 400, "validation_failed")
		again := h.do("POST", "/v1/tickets", h.adminKey, invalid, "Idempotency-Key", "invalid-1")
		h.wantReplayOf(again, first)
		if e := h.log.last(); e.ErrorCode != helpdeskflow.EValidation || e.Status != 400 {
			t.Errorf("request log entry of the replayed error: %+v", e)
		}
		// Fixing the body needs a new key.
		h.want(h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "invalid-1"), 422, "idempotency_key_reused")
	})

	t.Run("ConflictIsNotKept", func(t *testing.T) {
		id := h.newTicket(h.adminKey)
		h.want(h.do("PATCH", "/v1/tickets/"+id, h.adminKey, map[string]any{"status": "solved"}), 200, "")
		h.want(h.do("PATCH", "/v1/tickets/"+id, h.adminKey, map[string]any{"status": "closed"}), 200, "")
		for range 2 {
			r := h.do("PATCH", "/v1/tickets/"+id, h.adminKey, map[string]any{"priority": "low"}, "Idempotency-Key", "conflict-1")
			h.want(r, 409, "conflict")
			if replayed(r) {
				t.Fatal("a 409 was replayed")
			}
		}
		if n := h.keyRows(h.workspace, "conflict-1"); n != 0 {
			t.Fatalf("the key of a 409 is kept (%d rows)", n)
		}
	})

	t.Run("PerWorkspace", func(t *testing.T) {
		other, otherKey := h.newWorkspace()
		a := h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "shared")
		b := h.do("POST", "/v1/tickets", otherKey, ticket, "Idempotency-Key", "shared")
		h.want(a, 201, "")
		h.want(b, 201, "")
		if replayed(b) || a.body["id"] == b.body["id"] {
			t.Fatalf("the other workspace's request replayed the first: %s", b.raw)
		}
		if got := h.ticketsCreated(other); got != 1 {
			t.Fatalf("the other workspace has %d tickets, want 1", got)
		}
	})

	// An Idempotency-Key belongs to the API key that sent it: the same key
	// from another API key never replays the first answer (an agent key
	// used to get an admin's answer, internal notes included), and the
	// role check runs first.
	t.Run("PerAPIKey", func(t *testing.T) {
		agent := h.agentKey()
		id := h.newTicket(h.adminKey)
		note := map[string]any{"body": "internal only", "internal": true}
		first := h.do("POST", "/v1/tickets/"+id+"/messages", h.adminKey, note, "Idempotency-Key", "note-1")
		h.want(first, 201, "")
		if !strings.Contains(first.raw, "internal only") {
			t.Fatalf("the admin's answer lacks the note: %s", first.raw)
		}
		r := h.do("POST", "/v1/tickets/"+id+"/messages", agent, note, "Idempotency-Key", "note-1")
		h.want(r, 403, "forbidden")
		if replayed(r) || strings.Contains(r.raw, "internal only") {
			t.Fatalf("the agent key got the admin's answer: %s", r.raw)
		}
		a := h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "per-key")
		b := h.do("POST", "/v1/tickets", agent, ticket, "Idempotency-Key", "per-key")
		h.want(a, 201, "")
		h.want(b, 201, "")
		if replayed(b) || a.body["id"] == b.body["id"] {
			t.Fatalf("the agent key's request replayed the admin's: %s", b.raw)
		}
		h.wantReplayOf(h.do("POST", "/v1/tickets", agent, ticket, "Idempotency-Key", "per-key"), b)
	})

	t.Run("ExpiredKeyIsNew", func(t *testing.T) {
		first := h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "expiring")
		h.want(first, 201, "")
		h.ageKey(h.workspace, "expiring", "24 hours 1 second")
		again := h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "expiring")
		h.want(again, 201, "")
		if replayed(again) || again.body["id"] == first.body["id"] {
			t.Fatalf("an expired key was replayed: %s", again.raw)
		}
		h.wantReplayOf(h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", "expiring"), again)
	})

	t.Run("PayloadTooLarge", func(t *testing.T) {
		big := `{"subject":"` + strings.Repeat("x", http.MaxBodyBytes) + `"}`
		h.want(h.do("POST", "/v1/tickets", h.adminKey, big, "Idempotency-Key", "big"), 413, "payload_too_large")
	})

	t.Run("InvalidHeader", func(t *testing.T) {
		h.want(h.do("POST", "/v1/tickets", h.adminKey, ticket, "Idempotency-Key", strings.Repeat("k", 255)), 201, "")
		for name, headers := range map[string][]string{
			"empty":     {"Idempotency-Key", ""},
			"256 chars": {"Idempotency-Key", strings.Repeat("k", 256)},
			"non-ASCII": {"Idempotency-Key", "clé"},
			"twice":     {"Idempotency-Key", "a", "Idempotency-Key", "b"},
		} {
			t.Run(name, func(t *testing.T) {
				r := h.do("POST", "/v1/tickets", h.adminKey, ticket, headers...)
				h.want(r, 400, "validation_failed")
				if !strings.Contains(r.raw, `"field":"Idempotency-Key"`) {
					t.Errorf("the error does not name Idempotency-Key: %s", r.raw)
				}
			})
		}
		// Only POST and PATCH use the key.
		h.want(h.do("GET", "/v1/tickets/"+uuid.NewString(), h.adminKey, nil, "Idempotency-Key", ""), 404, "not_found")
	})

	t.Run("SecretsAreKeptSealed", func(t *testing.T) {
		create := map[string]any{"role": "agent", "name": "zapier"}
		first := h.do("POST", "/v1/api-keys", h.adminKey, create, "Idempotency-Key", "new-key")
		h.want(first, 201, "")
		secret := first.body["key"].(string)
		again := h.do("POST", "/v1/api-keys", h.adminKey, create, "Idempotency-Key", "new-key")
		h.wantReplayOf(again, first)
		if again.header.Get("Cache-Control") != "no-store" {
			t.Errorf("replayed Cache-Control = %q, want no-store", again.header.Get("Cache-Control"))
		}
		var body []byte
		var sealed bool
		if err := h.db.Pool().QueryRow(context.Background(), `SELECT response_body, sealed FROM idempotency_keys WHERE workspace_id = $1 AND key = 'new-key'`,
			h.workspace).Scan(&body, &sealed); err != nil {
			t.Fatal(err)
		}
		if !sealed || bytes.Contains(body, []byte(secret)) || bytes.Contains(body, []byte(`"role"`)) {
			t.Fatalf("the kept response is not sealed (sealed %v): %q", sealed, body)
		}
		// Another key of the workspace sending the same Idempotency-Key
		// makes a request of its own, and never sees the first secret.
		other, err := h.service.Access.CreateAPIKey(context.Background(), helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem},
			h.workspace, commandaccess.CreateAPIKey{Role: helpdeskflow.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		r := h.do("POST", "/v1/api-keys", other.Secret, create, "Idempotency-Key", "new-key")
		h.want(r, 201, "")
		if replayed(r) || strings.Contains(r.raw, secret) {
			t.Fatal("the secret was shown to another key")
		}
		list := h.do("GET", "/v1/api-keys?limit=100", h.adminKey, nil)
		if n := strings.Count(list.raw, `"zapier"`); n != 2 {
			t.Fatalf("%d keys named zapier, want 2 (one per API key that asked): %s", n, list.raw)
		}
	})
}

// scriptedTickets runs creates through Tickets, except that a create whose
// subject has a script gets the script's error (or panic, or wait) at its
// first call; later calls run normally.
type scriptedTickets struct {
	http.Tickets
	mu      sync.Mutex
	scripts map[string]func() error
}

func (s *scriptedTickets) CreateTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.CreateTicket) (helpdeskflow.Ticket, error) {
	if err := s.run(cmd); err != nil {
		return helpdeskflow.Ticket{}, err
	}
	return s.Tickets.CreateTicket(ctx, workspaceID, md, cmd)
}

func (s *scriptedTickets) CreateTicketKept(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.CreateTicket,
	held helpdeskflow.HeldIdempotencyKey, respond func(helpdeskflow.Ticket) (helpdeskflow.IdempotentResponse, error)) (helpdeskflow.IdempotentResponse, error) {
	if err := s.run(cmd); err != nil {
		return helpdeskflow.IdempotentResponse{}, err
	}
	return s.Tickets.CreateTicketKept(ctx, workspaceID, md, cmd, held, respond)
}

// run runs cmd's script, the first time only.
func (s *scriptedTickets) run(cmd tickets.CreateTicket) error {
	s.mu.Lock()
	script := s.scripts[cmd.Subject]
	delete(s.scripts, cmd.Subject)
	s.mu.Unlock()
	if script != nil {
		return script()
	}
	return nil
}

// withServer returns a copy of h whose requests go to a server on the same
// database with tickets and idempotency instead of h's.
func (h *harness) withServer(tickets http.Tickets, idempotency http.Idempotency) *harness {
	h.t.Helper()
	limiter, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Tickets, cfg.Idempotency, cfg.Limiter = tickets, idempotency, limiter
	cfg.Auth = access.NewCache(h.store.AccessStore, access.CacheConfig{})
	cfg.Registerer, cfg.Gatherer = nil, nil // h's server holds the metric names
	server, err := http.NewServer(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(server)
	h.t.Cleanup(srv.Close)
	c := *h
	c.url, c.server = srv.URL, server
	return &c
}

func TestServer_IdempotencyKeyOutcomes(t *testing.T) {
	base := newHarness(t)
	tickets := &scriptedTickets{Tickets: base.service.Tickets, scripts: map[string]func() error{}}
	h := base.withServer(tickets, idempotency.New(base.store.DB))
	script := func(subject string, fn func() error) {
		tickets.mu.Lock()
		tickets.scripts[subject] = fn
		tickets.mu.Unlock()
	}

	// Outcomes that are not final give the key up: the retry runs again.
	for _, c := range []struct {
		name   string
		fail   func() error
		status int
		code   string
	}{
		{"conflict", func() error { return helpdeskflow.Errorf(helpdeskflow.EVersionConflict, "moved") }, 409, "version_conflict"},
		{"internal", func() error { return helpdeskflow.Errorf(helpdeskflow.EInternal, "boom") }, 500, "internal"},
		{"unavailable", func() error { return helpdeskflow.Errorf(helpdeskflow.EUnavailable, "down") }, 503, "unavailable"},
		{"panic", func() error { panic("handler bug") }, 500, "internal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			script(c.name, c.fail)
			before := h.ticketsCreated(h.workspace)
			h.want(h.do("POST", "/v1/tickets", h.adminKey, ticketBody(c.name), "Idempotency-Key", c.name), c.status, c.code)
			if n := h.keyRows(h.workspace, c.name); n != 0 {
				t.Fatalf("the key of a %d is kept", c.status)
			}
			first := h.do("POST", "/v1/tickets", h.adminKey, ticketBody(c.name), "Idempotency-Key", c.name)
			h.want(first, 201, "")
			if replayed(first) || h.ticketsCreated(h.workspace) != before+1 {
				t.Fatalf("the retry did not run: %s", first.raw)
			}
			h.wantReplayOf(h.do("POST", "/v1/tickets", h.adminKey, ticketBody(c.name), "Idempotency-Key", c.name), first)
		})
	}

	t.Run("AbandonedKeyIsTakenOver", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		script("slow", func() error { close(started); <-release; return nil })
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		defer free() // a failure must not leave the server waiting
		before := h.ticketsCreated(h.workspace)
		firstDone := make(chan response)
		go func() {
			firstDone <- h.do("POST", "/v1/tickets", h.adminKey, ticketBody("slow"), "Idempotency-Key", "slow")
		}()
		<-started
		h.want(h.do("POST", "/v1/tickets", h.adminKey, ticketBody("slow"), "Idempotency-Key", "slow"), 409, "idempotency_key_in_use")

		// The first request's process "died" a lease ago: a retry takes over.
		h.ageKey(h.workspace, "slow", "61 seconds")
		h.want(h.do("POST", "/v1/tickets", h.adminKey, ticketBody("other"), "Idempotency-Key", "slow"), 422, "idempotency_key_reused")
		takeover := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("slow"), "Idempotency-Key", "slow")
		h.want(takeover, 201, "")
		if replayed(takeover) {
			t.Fatal("the takeover was replayed")
		}
		// The first request finishes late: a create keeps its answer in its
		// own transaction, so it finds its claim lost and stores nothing
		// (the takeover did the work); the kept response is the takeover's.
		free()
		first := <-firstDone
		h.want(first, 409, "idempotency_key_in_use")
		h.wantReplayOf(h.do("POST", "/v1/tickets", h.adminKey, ticketBody("slow"), "Idempotency-Key", "slow"), takeover)
		if got := h.ticketsCreated(h.workspace) - before; got != 1 {
			t.Fatalf("%d tickets created, want 1 (the takeover's alone)", got)
		}
	})

	t.Run("NoStoreIgnoresTheHeader", func(t *testing.T) {
		plain := base.withServer(base.service.Tickets, nil)
		before := plain.ticketsCreated(plain.workspace)
		for range 2 {
			r := plain.do("POST", "/v1/tickets", plain.adminKey, ticketBody("plain"), "Idempotency-Key", "plain")
			plain.want(r, 201, "")
			if replayed(r) {
				t.Fatal("replayed without Config.Idempotency")
			}
		}
		if got := plain.ticketsCreated(plain.workspace) - before; got != 2 {
			t.Fatalf("%d tickets created, want 2", got)
		}
		if n := plain.keyRows(plain.workspace, "plain"); n != 0 {
			t.Fatalf("%d rows kept without Config.Idempotency", n)
		}
	})
}

// TestServer_TicketCreateKeepsItsAnswerInItsTransaction: POST /v1/tickets
// with an Idempotency-Key keeps its answer in the transaction that creates
// the ticket. Even when the process dies right after the commit (nothing
// kept after the handler), a retry once the lease has run out replays the
// answer, byte for byte with its Location and ETag, and creates nothing.
func TestServer_TicketCreateKeepsItsAnswerInItsTransaction(t *testing.T) {
	h := newHarness(t)
	keys := &forgetfulKeys{Keys: idempotency.New(h.store.DB)}
	crashy := h.withServer(h.service.Tickets, keys)
	before := h.ticketsCreated(h.workspace)
	crashed := crashy.do("POST", "/v1/tickets", h.adminKey, ticketBody("kept"), "Idempotency-Key", "kept-1")
	h.want(crashed, 201, "")
	if _, err := h.db.Pool().Exec(context.Background(), `UPDATE idempotency_keys SET created_at = created_at - $1::interval WHERE key = 'kept-1'`,
		(idempotency.Lease + time.Second).String()); err != nil {
		t.Fatal(err)
	}
	retry := h.do("POST", "/v1/tickets", h.adminKey, ticketBody("kept"), "Idempotency-Key", "kept-1")
	h.want(retry, 201, "")
	if retry.raw != crashed.raw || retry.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the retry after the crash ran the create again:\n%s\n%s", crashed.raw, retry.raw)
	}
	for _, name := range []string{"Location", "ETag", "Content-Type"} {
		if got, want := retry.header.Get(name), crashed.header.Get(name); got != want || want == "" {
			t.Errorf("%s: replayed %q, first %q", name, got, want)
		}
	}
	if n := h.ticketsCreated(h.workspace) - before; n != 1 {
		t.Errorf("%d tickets created, want 1: the retry after a crash created again", n)
	}
	if n := keys.completes.Load(); n != 0 {
		t.Errorf("the middleware kept the create's response after the handler %d times; the transaction keeps it", n)
	}
}

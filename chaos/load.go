package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// load is the steady load: creates, updates and messages through both API
// processes, each with an Idempotency-Key and retried with it when the
// outcome is unknown, recorded in the ledger.
type load struct {
	api     *apiClient
	ledger  *ledger
	phaseOf func() int
	mu      sync.Mutex
	tickets []string // created tickets, for updates and messages
}

// retries is how often a write of unknown outcome is sent again with the
// same Idempotency-Key before the load gives up on it.
const retries = 5

// run sends writes from workers goroutines, each pausing pause between
// writes, until ctx ends.
func (l *load) run(ctx context.Context, workers int, pause time.Duration) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for ctx.Err() == nil {
				l.one(ctx, rng)
				sleep(ctx, pause)
			}
		}()
	}
	wg.Wait()
}

func (l *load) pick(rng *rand.Rand) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tickets) == 0 {
		return ""
	}
	return l.tickets[rng.IntN(len(l.tickets))]
}

// one makes one write: a create (or an update or a message on a ticket the
// load created).
func (l *load) one(ctx context.Context, rng *rand.Rand) {
	token := newToken()
	ticket := l.pick(rng)
	kind, method, path := writeCreate, "POST", "/v1/tickets"
	var body any = map[string]any{
		"subject":  "load " + token,
		"customer": map[string]string{"email": fmt.Sprintf("load%d@example.com", rng.IntN(40))},
		"message":  map[string]string{"body": "hello"},
	}
	switch r := rng.IntN(10); {
	case ticket != "" && r < 3:
		kind, method, path = writeUpdate, "PATCH", "/v1/tickets/"+ticket
		body = map[string]any{"subject": "update " + token}
	case ticket != "" && r < 6:
		kind, method, path = writeMessage, "POST", "/v1/tickets/"+ticket+"/messages"
		body = map[string]any{"body": "message " + token, "author_type": "customer"}
	}
	w := write{Token: token, Kind: kind, Phase: l.phaseOf(), Outcome: outcomeUnknown}
	header := map[string]string{"Idempotency-Key": token}
	for attempt := 0; attempt <= retries && ctx.Err() == nil; attempt++ {
		a := l.api.do(ctx, rng.IntN(len(l.api.bases)), method, path, body, header)
		if ctx.Err() != nil {
			break
		}
		switch {
		case a.Status == 200 || a.Status == 201:
			w.Outcome = outcomeOK
			if kind == writeCreate {
				if t, err := decodeTicket(a.Body); err == nil {
					l.mu.Lock()
					l.tickets = append(l.tickets, t.ID)
					l.mu.Unlock()
				}
			}
			l.ledger.add(w)
			return
		case a.Status == 409 || a.Status == 429 || a.unknown():
			// In use by the first attempt, rate limited, or unknown: again.
			sleep(ctx, time.Duration(200+rng.IntN(800))*time.Millisecond)
		default:
			w.Refused = true
			l.ledger.add(w)
			return
		}
	}
	l.ledger.add(w)
}

// histories records the linearizability histories: groups of clients, each
// group on a ticket of its own that it replaces every window, making
// concurrent composite reads and PATCHes (with If-Match and without)
// through both API processes.
type histories struct {
	api     *apiClient
	phaseOf func() int
	start   time.Time
	mu      sync.Mutex
	ops     map[int][]porcupine.Operation // by phase
	clients int                           // the next client id
}

func (h *histories) now() int64 { return int64(time.Since(h.start)) }

func (h *histories) add(phase int, op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ops == nil {
		h.ops = map[int][]porcupine.Operation{}
	}
	h.ops[phase] = append(h.ops[phase], op)
}

func (h *histories) newClient() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients++
	return h.clients - 1
}

func (h *histories) byPhase() map[int][]porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int][]porcupine.Operation{}
	for p, ops := range h.ops {
		out[p] = append([]porcupine.Operation(nil), ops...)
	}
	return out
}

// run runs groups groups of clients clients each until ctx ends; each group
// moves to a new ticket every window or when the phase changes, so each
// history is one phase's.
func (h *histories) run(ctx context.Context, groups, clients int, window, pause time.Duration) {
	var wg sync.WaitGroup
	for g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(1000+g)))
			for ctx.Err() == nil {
				h.ticket(ctx, rng, clients, window, pause)
			}
		}()
	}
	wg.Wait()
}

// ticket creates a ticket and runs clients on it for window.
func (h *histories) ticket(ctx context.Context, rng *rand.Rand, clients int, window, pause time.Duration) {
	phase := h.phaseOf()
	subject := "linearizable " + newToken()
	call := h.now()
	a := h.api.do(ctx, rng.IntN(len(h.api.bases)), "POST", "/v1/tickets", map[string]any{
		"subject": subject, "customer": map[string]string{"email": "history@example.com"},
		"message": map[string]string{"body": "history"},
	}, nil)
	if a.Status != 201 {
		sleep(ctx, 500*time.Millisecond)
		return
	}
	t, err := decodeTicket(a.Body)
	if err != nil {
		return
	}
	h.add(phase, porcupine.Operation{ClientId: h.newClient(), Call: call, Return: h.now(),
		Input:  ticketInput{Ticket: t.ID, Kind: opInit},
		Output: ticketOutput{Outcome: outcomeOK, State: ticketState{Subject: t.Subject, Version: t.Version}}})
	wctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var wg sync.WaitGroup
	for c := range clients {
		crng := rand.New(rand.NewPCG(rng.Uint64(), uint64(c)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.client(wctx, crng, phase, t.ID, t.Version, pause)
		}()
	}
	wg.Wait()
}

// client makes operations on one ticket until ctx ends or the phase
// changes. After an operation of unknown outcome it continues as a new
// client, since that operation never returned.
func (h *histories) client(ctx context.Context, rng *rand.Rand, phase int, ticket string, version int64, pause time.Duration) {
	id := h.newClient()
	seq := 0
	for ctx.Err() == nil && h.phaseOf() == phase {
		api := rng.IntN(len(h.api.bases))
		in := ticketInput{Ticket: ticket, Kind: opRead, API: api}
		method, path := "GET", "/v1/tickets/"+ticket
		var body any
		var header map[string]string
		if version != 0 && rng.IntN(10) < 6 { // after a 412, read first
			seq++
			in.Kind = opWrite
			in.Subject = fmt.Sprintf("c%d-%d %s", id, seq, ticket[:8])
			method, body = "PATCH", map[string]string{"subject": in.Subject}
			if rng.IntN(2) == 0 {
				in.IfMatch = version
				header = map[string]string{"If-Match": `"` + itoa(version) + `"`}
			}
		}
		call := h.now()
		a := h.api.do(ctx, api, method, path, body, header)
		ret := h.now()
		if ctx.Err() != nil {
			// Cut off by the harness: a write may still happen.
			if in.Kind == opWrite {
				h.add(phase, porcupine.Operation{ClientId: id, Input: in, Call: call, Return: pendingReturn,
					Output: ticketOutput{Outcome: outcomeUnknown}})
			}
			return
		}
		out := ticketOutput{Outcome: outcomeOK}
		switch {
		case a.Status == 200:
			t, err := decodeTicket(a.Body)
			if err != nil {
				out.Outcome = outcomeUnknown
				break
			}
			out.State = ticketState{Subject: t.Subject, Version: t.Version}
			version = t.Version
		case a.Status == 412 && in.IfMatch != 0:
			out.Outcome = outcomePrecondition
		case a.unknown():
			out.Outcome = outcomeUnknown
		default:
			// A definite refusal (429, say): nothing happened.
			sleep(ctx, pause)
			continue
		}
		if out.Outcome == outcomeUnknown {
			if in.Kind == opWrite {
				h.add(phase, porcupine.Operation{ClientId: id, Input: in, Call: call, Return: pendingReturn, Output: out})
				id = h.newClient()
			}
		} else {
			h.add(phase, porcupine.Operation{ClientId: id, Input: in, Call: call, Return: ret, Output: out})
		}
		if out.Outcome == outcomePrecondition {
			version = 0
		}
		sleep(ctx, pause)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// seedWorkers is how many commands the seeding runs at once.
const seedWorkers = 16

// seedReadTickets makes the composite-read phase's tickets in dev's
// workspace: the first through the API (which also names the workspace),
// the others and every reply by direct command calls on dev's database
// (no HTTP, the same commands), then waits until the relay has published
// them, so the load does not share the machine with their projection.
func (b *bench) seedReadTickets(ctx context.Context, client *nethttp.Client, bodies [][]byte) ([]string, error) {
	first, err := createTicket(ctx, client, b.dev.url, b.dev.key, bodies[0])
	if err != nil {
		return nil, err
	}
	wsText, err := b.pg.queryString(ctx, "SELECT workspace_id::text FROM streams WHERE id = $1::uuid", first)
	if err != nil {
		return nil, fmt.Errorf("the workspace of ticket %s: %w", first, err)
	}
	ws, err := uuid.Parse(wsText)
	if err != nil {
		return nil, err
	}
	pool, err := pg.Connect(ctx, b.pg.url, seedWorkers)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	store, err := eventstore.New(pool, nil)
	if err != nil {
		return nil, err
	}
	svc := tickets.New(postgres.Tickets(store))

	ids := make([]string, readTickets)
	ids[0] = first
	var next atomic.Int64
	replies := messageBodies(readTicketMessages - 1)
	errs := make(chan error, seedWorkers)
	var wg sync.WaitGroup
	for range seedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < readTickets && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				if err := seedReadTicket(ctx, svc, ws, bodies, replies, ids, i); err != nil {
					errs <- fmt.Errorf("seed ticket %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	b.created += readTickets
	if _, err := drainPipeline(ctx, client, b.dev.url+"/metrics", 5*time.Minute); err != nil {
		b.res.note("composite read: after seeding: %v", err)
	}
	return ids, nil
}

// seedReadTicket creates ticket i (unless it is the first, made through
// the API) and gives it the replies, alternately from an agent and the
// customer.
func seedReadTicket(ctx context.Context, svc *tickets.Service, ws uuid.UUID, bodies [][]byte, replies []string, ids []string, i int) error {
	var id uuid.UUID
	if i == 0 {
		id = uuid.MustParse(ids[0])
	} else {
		var cmd tickets.CreateTicket
		if err := json.Unmarshal(bodies[i%len(bodies)], &cmd); err != nil {
			return err
		}
		t, err := svc.CreateTicket(ctx, ws, benchActor, cmd)
		if err != nil {
			return err
		}
		id, ids[i] = t.ID, t.ID.String()
	}
	for j, m := range replies {
		author := helpdeskflow.AuthorAgent
		if j%2 == 1 {
			author = helpdeskflow.AuthorCustomer
		}
		if _, err := svc.AddMessage(ctx, ws, benchActor, id, nil, tickets.AddMessage{Body: m, AuthorType: author}, false); err != nil {
			return err
		}
	}
	return nil
}

// readMix is the composite-read phase's traffic: GETs of random tickets
// of the set, and one request in readWriteEvery a write to one of them,
// PATCH (priority) and POST messages in turn.
type readMix struct {
	client   *nethttp.Client
	base     string
	key      string
	ids      []string
	rngs     []*rand.Rand // per worker
	sent     []int
	priority []string
}

func newReadMix(client *nethttp.Client, base, key string, ids []string, workers int) *readMix {
	m := &readMix{client: client, base: base, key: key, ids: ids, sent: make([]int, workers), priority: []string{"low", "normal", "high", "urgent"}}
	for w := range workers {
		m.rngs = append(m.rngs, rand.New(rand.NewPCG(uint64(w), 4242)))
	}
	return m
}

// next is one request of worker w, labelled read, patch or message.
func (m *readMix) next(ctx context.Context, w int) outcome {
	r := m.rngs[w]
	url := m.base + "/v1/tickets/" + m.ids[r.IntN(len(m.ids))]
	m.sent[w]++
	if m.sent[w]%readWriteEvery != 0 {
		_, kind, err := get(ctx, m.client, url, m.key, false)
		return outcome{label: "read", kind: kind, err: err}
	}
	label, method, want, body := "patch", "PATCH", nethttp.StatusOK, []byte(`{"priority":"`+m.priority[r.IntN(len(m.priority))]+`"}`)
	if m.sent[w]%(2*readWriteEvery) == 0 {
		label, method, want, url = "message", "POST", nethttp.StatusCreated, url+"/messages"
		body = []byte(`{"body":"<p>Any news on this? (` + strconv.Itoa(r.IntN(1000000)) + `)</p>","author_type":"customer"}`)
	}
	status, raw, err := send(ctx, m.client, method, url, m.key, body)
	switch {
	case err != nil:
		return outcome{label: label, kind: "transport", err: err}
	case status != want:
		return outcome{label: label, kind: fmt.Sprintf("status_%d", status), err: fmt.Errorf("%s %s: status %d: %s", method, url, status, trimBody(raw))}
	}
	return outcome{label: label}
}

// staticServer is the composite read's baseline: a net/http server in
// this process whose handler answers every request 200 with one fixed
// JSON body (the composite read's own answer, so the same size), hit by
// the same load generator.
type staticServer struct {
	srv *nethttp.Server
	url string
}

func startStaticServer(body []byte) (*staticServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	length := strconv.Itoa(len(body))
	srv := &nethttp.Server{
		Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			io.Copy(io.Discard, r.Body) //nolint:errcheck // the baseline only answers
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Content-Length", length)
			w.Write(body) //nolint:errcheck // the client went away
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	go srv.Serve(l) //nolint:errcheck // ends with close
	return &staticServer{srv: srv, url: "http://" + l.Addr().String() + "/v1/tickets/static"}, nil
}

func (s *staticServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx) //nolint:errcheck // best effort
}

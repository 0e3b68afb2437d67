package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

// hookReceiver is the local receiver: one net/http server listening on
// 127.0.0.1 … 127.0.0.16 (one address per webhook, as distinct receivers
// would be), answering 200 with a small body at once.
type hookReceiver struct {
	srv       *nethttp.Server
	listeners []net.Listener
	port      int
	secrets   []string // by webhook index, for the sampled signature checks

	requests atomic.Int64 // this round
	conns    atomic.Int64 // connections accepted, ever
	arrivals []int64      // unix nanos, this round, up to len
	next     atomic.Int64
	verified atomic.Int64
	badSig   atomic.Int64
	firstBad atomic.Value // string
}

var hookOK = []byte(`{"received":true}`)

func startHookReceiver(n int) (*hookReceiver, error) {
	r := &hookReceiver{secrets: make([]string, n)}
	r.srv = &nethttp.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ConnState: func(_ net.Conn, s nethttp.ConnState) {
			if s == nethttp.StateNew {
				r.conns.Add(1)
			}
		},
	}
	for i := range n {
		addr := fmt.Sprintf("127.0.0.%d:%d", i+1, r.port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range r.listeners {
				l.Close()
			}
			return nil, fmt.Errorf("receiver: listen on %s: %w", addr, err)
		}
		if i == 0 {
			r.port = ln.Addr().(*net.TCPAddr).Port
		}
		r.listeners = append(r.listeners, ln)
	}
	for _, ln := range r.listeners {
		go r.srv.Serve(ln)
	}
	return r, nil
}

// url is webhook i's address; the plain client posts to the same.
func (r *hookReceiver) url(i int) string {
	return fmt.Sprintf("http://127.0.0.%d:%d/hooks/%d", i%len(r.listeners)+1, r.port, i%len(r.listeners))
}

// reset starts a round, recording up to n arrival times.
func (r *hookReceiver) reset(n int) {
	r.requests.Store(0)
	r.next.Store(0)
	r.arrivals = make([]int64, n)
}

func (r *hookReceiver) ServeHTTP(w nethttp.ResponseWriter, req *nethttp.Request) {
	at := time.Now().UnixNano()
	body, _ := io.ReadAll(req.Body)
	if i := r.next.Add(1) - 1; i < int64(len(r.arrivals)) {
		r.arrivals[i] = at
	}
	n := r.requests.Add(1)
	if sig := req.Header.Get("X-HDF-Signature"); sig != "" && n%webhookVerifyEvery == 0 {
		hook, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hooks/"))
		switch {
		case err != nil || hook < 0 || hook >= len(r.secrets):
			err = fmt.Errorf("unexpected path %s", req.URL.Path)
			r.bad(err)
		default:
			if err := webhook.Verify(sig, body, r.secrets[hook], 0, time.Now()); err != nil {
				r.bad(err)
			} else {
				r.verified.Add(1)
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(hookOK)
}

func (r *hookReceiver) bad(err error) {
	r.badSig.Add(1)
	r.firstBad.CompareAndSwap(nil, err.Error())
}

// gaps summarizes the times between arrivals of this round.
func (r *hookReceiver) gaps() latencySummary {
	n := min(int(r.next.Load()), len(r.arrivals))
	if n < 2 {
		return latencySummary{}
	}
	at := slices.Clone(r.arrivals[:n])
	slices.Sort(at)
	ds := make([]time.Duration, n-1)
	for i := 1; i < n; i++ {
		ds[i-1] = time.Duration(at[i] - at[i-1])
	}
	return summarize(ds)
}

func (r *hookReceiver) span() (first, last time.Time) {
	n := min(int(r.next.Load()), len(r.arrivals))
	if n == 0 {
		return
	}
	lo, hi := r.arrivals[0], r.arrivals[0]
	for _, a := range r.arrivals[:n] {
		lo, hi = min(lo, a), max(hi, a)
	}
	return time.Unix(0, lo), time.Unix(0, hi)
}

func (r *hookReceiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
}

// webhookBodies builds n delivery bodies as WebhookHandler writes them: a
// ticket.created event of the workspace with its data, about 1 KB.
func webhookBodies(n int, workspaceID uuid.UUID) [][]byte {
	r := rand.New(rand.NewPCG(7, 1007))
	out := make([][]byte, n)
	type payload struct {
		ID          uuid.UUID                  `json:"id"`
		Type        string                     `json:"type"`
		WorkspaceID uuid.UUID                  `json:"workspace_id"`
		OccurredAt  string                     `json:"occurred_at"`
		Data        helpdeskflow.TicketCreated `json:"data"`
	}
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	for i := range out {
		c := r.IntN(customers)
		first, last := firstNames[c%len(firstNames)], lastNames[(c/len(firstNames))%len(lastNames)]
		order := 10000 + r.IntN(90000)
		product := products[r.IntN(len(products))]
		text := fmt.Sprintf("Hello support team, I ordered the %s (order #%d) and it arrived with a cracked housing. "+
			"Could you send a replacement or refund the %d.%02d EUR? Kind regards, %s %s", product, order, 20+r.IntN(900), r.IntN(100), first, last)
		d := helpdeskflow.TicketCreated{Subject: fmt.Sprintf(subjects[r.IntN(len(subjects))], order), Status: "open",
			Priority: priorities[r.IntN(len(priorities))], Type: "question", Channel: "api", CustomerID: uuid.New(),
			Message: helpdeskflow.MessageAdded{ID: uuid.New(), AuthorType: "customer", Body: "<p>" + text + "</p>", BodyText: text}}
		for _, j := range r.Perm(len(tagPool))[:1+r.IntN(3)] {
			d.Tags = append(d.Tags, tagPool[j])
		}
		out[i], _ = json.Marshal(payload{ID: uuid.New(), Type: helpdeskflow.EventTicketCreated, WorkspaceID: workspaceID,
			OccurredAt: t0.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00"), Data: d})
	}
	return out
}

package main

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	nethttp "net/http"
	"net/url"
	"time"
)

// listWorker is one worker's state in the list load: its own random
// source and the next_cursor walk it is in.
type listWorker struct {
	r         *rand.Rand
	seed      listSeed
	base, key string
	walk      string // the query of the walk in progress ("" for no filter)
	cursor    string // next_cursor of the walk's last page
	pagesLeft int    // pages of the walk still to read
	turn      int    // the next query kind, an index into listStartKinds
	rows      map[string]int
	pages     map[string]int
}

func newListWorker(i int, seed listSeed, base, key string) *listWorker {
	return &listWorker{r: rand.New(rand.NewPCG(uint64(i), 4242)), seed: seed, base: base, key: key, turn: i,
		rows: map[string]int{}, pages: map[string]int{}}
}

// next sends the worker's next list request: the next page of its walk, or
// a query of the next kind in turn (a "no filter" query starts a walk of
// listPagesPerWalk pages). Filter values are picked at random.
func (w *listWorker) next(ctx context.Context, client *nethttp.Client) outcome {
	q := url.Values{}
	kind := kindNextPage
	if w.pagesLeft > 0 && w.cursor != "" {
		var err error
		if q, err = url.ParseQuery(w.walk); err != nil {
			return outcome{kind: "request", err: err}
		}
		q.Set("cursor", w.cursor)
		w.pagesLeft--
	} else {
		w.walk, w.cursor, w.pagesLeft = "", "", 0
		kind = listStartKinds[w.turn%len(listStartKinds)]
		w.turn++
		q = listQueryOf(kind, w.r, w.seed)
	}
	u := w.base
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	raw, errKind, err := get(ctx, client, u, w.key, true)
	if errKind != "" {
		w.pagesLeft = 0
		return outcome{label: kind, kind: errKind, err: err}
	}
	var page struct {
		Data       []json.RawMessage `json:"data"`
		NextCursor *string           `json:"next_cursor"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		w.pagesLeft = 0
		return outcome{label: kind, kind: "bad_json", err: err}
	}
	w.rows[kind] += len(page.Data)
	w.pages[kind]++
	if kind == kindNone {
		w.walk, w.pagesLeft = "", listPagesPerWalk-1
	}
	if page.NextCursor != nil {
		w.cursor = *page.NextCursor
	} else {
		w.cursor = ""
	}
	return outcome{label: kind}
}

// listStartKinds are the kinds a worker sends in turn; next_cursor pages
// follow a no-filter query.
var listStartKinds = []string{kindNone, kindStatus, kindPriorityTag, kindTeam, kindCustomer, kindUpdatedAfter, kindDeepPage}

// listQueryOf is the query string of a list query of kind (any but
// kindNextPage), its filter values picked with r.
func listQueryOf(kind string, r *rand.Rand, seed listSeed) url.Values {
	q := url.Values{}
	switch kind {
	case kindStatus:
		q.Set("status", "open")
	case kindPriorityTag:
		q.Set("priority", "high")
		q.Set("tag", listTags[r.IntN(20)])
	case kindTeam:
		q.Set("team", listTeams[r.IntN(len(listTeams))])
	case kindCustomer:
		// The same skew as the seeding, so most picks have tickets.
		q.Set("customer_id", seed.customers[int(float64(seed.demoCusts)*math.Pow(r.Float64(), 2))].String())
	case kindUpdatedAfter:
		q.Set("updated_after", seed.now.Add(-30*24*time.Hour).Format("2006-01-02T15:04:05.000Z07:00"))
	case kindDeepPage:
		if len(seed.deepPages) > 0 {
			for k, v := range seed.deepPages[r.IntN(len(seed.deepPages))] {
				q[k] = v
			}
		}
	}
	return q
}

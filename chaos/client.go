package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// apiClient calls the API processes with one key and records every
// request's availability.
type apiClient struct {
	bases   []string // http://127.0.0.1:port of each API process
	key     string
	http    *http.Client
	avail   *availability
	phaseOf func() int
}

// answer is an HTTP answer: status 0 means no answer (a transport error).
type answer struct {
	Status int
	Body   []byte
	Err    error
}

// unknown reports whether the request's outcome is unknown: no answer, or
// a 5xx, after which a write may or may not have happened.
func (a answer) unknown() bool { return a.Status == 0 || a.Status >= 500 }

func newAPIClient(bases []string, key string, avail *availability, phaseOf func() int) *apiClient {
	return &apiClient{bases: bases, key: key, avail: avail, phaseOf: phaseOf, http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}}
}

// do sends one request to API process api and records it.
func (c *apiClient) do(ctx context.Context, api int, method, path string, body any, header map[string]string) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{Err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.bases[api]+path, rd)
	if err != nil {
		return answer{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	var a answer
	if err != nil {
		a = answer{Err: err}
	} else {
		a.Status = resp.StatusCode
		a.Body, a.Err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if a.Err != nil {
			a.Status = 0
		}
	}
	if ctx.Err() == nil && c.avail != nil {
		c.avail.record(api, c.phaseOf(), start, time.Now(), !a.unknown())
	}
	return a
}

// ticketView is the part of a ticket the suite reads.
type ticketView struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Version int64  `json:"version"`
}

func decodeTicket(b []byte) (ticketView, error) {
	var t ticketView
	if err := json.Unmarshal(b, &t); err != nil {
		return t, err
	}
	if t.ID == "" || t.Version < 1 {
		return t, fmt.Errorf("not a ticket: %.200s", b)
	}
	return t, nil
}

// availability records when each API process answered and when it did not,
// and when each one was down on purpose (killed and not yet restarted).
type availability struct {
	mu       sync.Mutex
	requests []request
	down     []window // the windows a process (or all) was known down
}

type request struct {
	API        int
	Phase      int
	Start, End time.Time
	OK         bool
}

type window struct {
	API        int // -1: every process
	Start, End time.Time
}

func (a *availability) record(api, phase int, start, end time.Time, ok bool) {
	a.mu.Lock()
	a.requests = append(a.requests, request{API: api, Phase: phase, Start: start, End: end, OK: ok})
	a.mu.Unlock()
}

// markDown records that API process api (or every process, api -1) may
// fail between start and end.
func (a *availability) markDown(api int, start, end time.Time) {
	a.mu.Lock()
	a.down = append(a.down, window{API: api, Start: start, End: end})
	a.mu.Unlock()
}

// availabilityTally is one phase's API availability.
type availabilityTally struct {
	Requests  int
	Failed    int           // no answer or 5xx
	Unexcused int           // failed outside a window the process was down in
	Longest   time.Duration // the longest time one process answered nothing
}

// tally computes per phase the requests, the failed ones, those that failed
// while their process was not known down, and the longest stretch of
// failures of one process (from its first failed request's start to the
// end of its last failed request before it answered again).
func (a *availability) tally(phases int) []availabilityTally {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]availabilityTally, phases)
	reqs := append([]request(nil), a.requests...)
	sortRequests(reqs)
	type run struct {
		start, end time.Time
		phase      int
		open       bool
	}
	runs := map[int]*run{}
	for _, r := range reqs {
		t := &out[r.Phase]
		t.Requests++
		cur := runs[r.API]
		if cur == nil {
			cur = &run{}
			runs[r.API] = cur
		}
		if r.OK {
			if cur.open && r.Start.After(cur.end) {
				closeRun(out, cur.phase, cur.start, cur.end)
				cur.open = false
			}
			continue
		}
		t.Failed++
		if !a.excusedLocked(r) {
			t.Unexcused++
		}
		if !cur.open {
			*cur = run{start: r.Start, end: r.End, phase: r.Phase, open: true}
		} else if r.End.After(cur.end) {
			cur.end = r.End
		}
	}
	for _, cur := range runs {
		if cur.open {
			closeRun(out, cur.phase, cur.start, cur.end)
		}
	}
	return out
}

func closeRun(out []availabilityTally, phase int, start, end time.Time) {
	if d := end.Sub(start); d > out[phase].Longest {
		out[phase].Longest = d
	}
}

func (a *availability) excusedLocked(r request) bool {
	for _, w := range a.down {
		if (w.API == -1 || w.API == r.API) && r.Start.Before(w.End) && r.End.After(w.Start) {
			return true
		}
	}
	return false
}

func sortRequests(reqs []request) {
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].Start.Before(reqs[j].Start) })
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

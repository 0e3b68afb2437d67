package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// syncs returns the API process's count of successful rate limit
// exchanges, from its /metrics.
func syncs(t *testing.T, url string) int {
	t.Helper()
	resp, err := nethttp.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "helpdeskflow_rate_limit_syncs_total "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining
	t.Fatalf("%s/metrics has no helpdeskflow_rate_limit_syncs_total", url)
	return 0
}

// exchanged waits until every process has made two more exchanges, so
// each has made one that started after the requests before the call.
func exchanged(t *testing.T, urls ...string) {
	t.Helper()
	for _, url := range urls {
		from := syncs(t, url)
		testenv.Eventually(t, 30*time.Second, func() error {
			if n := syncs(t, url); n < from+2 {
				return fmt.Errorf("%s: %d exchanges, waiting for %d", url, n, from+2)
			}
			return nil
		})
	}
}

// TestRateLimits_TwoAPIProcesses: a client that alternates between two
// API processes, as a load balancer does, gets the limit of its key in
// all, not twice the limit: each process counts the other's admissions
// from its next exchange, so with an exchange between rounds of one
// request per process the excess is at most one request (what the other
// process admitted in one exchange interval). The headers and
// GET /v1/rate-limits show the shared count.
func TestRateLimits_TwoAPIProcesses(t *testing.T) {
	cfg := testConfig(t)
	_, brokers := testenv.Kafka(t)
	ctx := context.Background()
	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	svc := testenv.NewCommands(store.events, testenv.CommandOptions{})
	_, admin, err := svc.Access.CreateWorkspace(ctx, systemMetadata(), "two processes")
	if err != nil {
		t.Fatal(err)
	}
	first, second := startAPIProcess(t, cfg, brokers), startAPIProcess(t, cfg, brokers)
	const limit = 10
	if status, _, body := call(t, "PUT", first+"/v1/rate-limits", admin.Secret,
		[]byte(fmt.Sprintf(`{"limits": {"tickets.read": {"limit": %d, "window_seconds": 3600}}}`, limit))); status != 200 {
		t.Fatalf("set the limit: %d %v", status, body)
	}

	admitted, denied := 0, 0
	for round := range 12 {
		for _, url := range []string{first, second} {
			status, hdr, body := call(t, "GET", url+"/v1/tickets", admin.Secret, nil)
			switch status {
			case 200:
				admitted++
				// Every admission before this round is known here.
				if remaining, _ := strconv.Atoi(hdr.Get("X-RateLimit-Remaining")); round > 0 && url == first && remaining != max(limit-admitted, 0) {
					t.Errorf("round %d: X-RateLimit-Remaining %d after %d admissions in all, want %d", round, remaining, admitted, max(limit-admitted, 0))
				}
			case 429:
				denied++
				if hdr.Get("Retry-After") == "" || hdr.Get("X-RateLimit-Remaining") != "0" {
					t.Errorf("429 headers: %v", hdr)
				}
			default:
				t.Fatalf("GET /v1/tickets: %d %v", status, body)
			}
		}
		exchanged(t, first, second)
		exchanged(t, first, second)
	}
	t.Logf("%d admitted, %d denied; limit %d", admitted, denied, limit)
	if admitted < limit || admitted > limit+1 {
		t.Errorf("the two processes admitted %d requests of a limit of %d, want %d to %d (one process's requests of one exchange interval over)",
			admitted, limit, limit, limit+1)
	}
	for _, url := range []string{first, second} {
		_, _, body := call(t, "GET", url+"/v1/rate-limits", admin.Secret, nil)
		for _, l := range body["limits"].([]any) {
			if l := l.(map[string]any); l["category"] == "tickets.read" && l["used"] != float64(admitted) {
				t.Errorf("%s: GET /v1/rate-limits shows %v used, want %d", url, l["used"], admitted)
			}
		}
	}
}

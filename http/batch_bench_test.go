package http_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"sync/atomic"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// BenchmarkBatchTickets measures tickets created per second through the
// API by 16 concurrent clients, two ways in the same run: POST /v1/tickets
// once per ticket, and POST /v1/batch/tickets with 100 items. A third of
// the tickets are for new customers. Compare the items/s of the two (a
// ratio: the machine is shared and noisy).
func BenchmarkBatchTickets(b *testing.B) {
	h := newHarness(b)
	limit := map[string]any{"limit": helpdeskflow.MaxRateLimit, "window_seconds": 60}
	h.want(h.do("PUT", "/v1/rate-limits", h.adminKey, map[string]any{"limits": map[string]any{"tickets.create": limit}}), 200, "")
	client := &nethttp.Client{Transport: &nethttp.Transport{MaxIdleConnsPerHost: 64}}
	var n atomic.Int64
	item := func() map[string]any {
		i := n.Add(1)
		email := fmt.Sprintf("known-%d@example.com", i%300)
		if i%3 == 0 {
			email = fmt.Sprintf("new-%d@example.com", i)
		}
		return map[string]any{"subject": fmt.Sprintf("Ticket %d", i), "customer": map[string]any{"email": email},
			"message": map[string]any{"body": "<p>My order arrived broken.</p>"}, "priority": "high", "tags": []string{"sync"}}
	}
	post := func(path string, body any, want int) error {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		req, err := nethttp.NewRequest("POST", h.url+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+h.adminKey)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			return fmt.Errorf("%s: %d %s", path, resp.StatusCode, answer)
		}
		return nil
	}
	run := testenv.RunParallelItems
	b.Run("single", func(b *testing.B) {
		run(b, 1, func() error { return post("/v1/tickets", item(), 201) })
	})
	b.Run("batch of 100", func(b *testing.B) {
		run(b, 100, func() error {
			items := make([]any, 100)
			for i := range items {
				items[i] = item()
			}
			return post("/v1/batch/tickets", map[string]any{"items": items}, 200)
		})
	})
}

package recordlog_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/kafka/recordlog"
)

// The service facts' Logger publishes each fact on its topic, keyed by
// its delivery or connection, its kind in hdf-fact, an endpoint cut to
// 2 KiB, and counts them in metrics of its own name.
func TestLogger_ServiceFacts(t *testing.T) {
	_, brokers := testenv.Kafka(t)
	l := newLogger(t, brokers, func(c *recordlog.Config) {
		c.Name, c.Topic = recordlog.NameServiceFacts, kafka.TopicServiceFacts
	})
	attempt := helpdeskflow.WebhookAttemptFact{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), DeliveryID: uuid.New(),
		Endpoint: "https://example.com/" + strings.Repeat("é", 2000), Attempt: 1, Outcome: helpdeskflow.AttemptSucceeded, StatusCode: 204}
	sync := helpdeskflow.MailSyncFact{Time: attempt.Time, RunID: uuid.New(), ConnectionID: uuid.New(), Provider: "outlook", Imported: 3,
		Outcome: helpdeskflow.SyncSucceeded}
	l.RecordWebhookAttempt(attempt)
	l.RecordMailSync(sync)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cl := testenv.TopicReader(t, brokers, kafka.TopicServiceFacts)
	defer cl.Close()
	got := map[string]*kgo.Record{}
	for len(got) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == kafka.HeaderFact {
					got[string(h.Value)] = r
				}
			}
		})
	}
	a, s := got[helpdeskflow.FactWebhookAttempt], got[helpdeskflow.FactMailSync]
	if a == nil || s == nil {
		t.Fatalf("records by kind: %v", got)
	}
	var gotAttempt helpdeskflow.WebhookAttemptFact
	if err := json.Unmarshal(a.Value, &gotAttempt); err != nil || string(a.Key) != attempt.DeliveryID.String() || !a.Timestamp.Equal(attempt.Time) {
		t.Errorf("attempt record %s %s: %v", a.Key, a.Timestamp, err)
	}
	if len(gotAttempt.Endpoint) > 2048 || !strings.HasPrefix(attempt.Endpoint, gotAttempt.Endpoint) || gotAttempt.StatusCode != 204 {
		t.Errorf("attempt: endpoint of %d bytes, %+v", len(gotAttempt.Endpoint), gotAttempt.StatusCode)
	}
	var gotSync helpdeskflow.MailSyncFact
	if err := json.Unmarshal(s.Value, &gotSync); err != nil || string(s.Key) != sync.ConnectionID.String() || gotSync != sync {
		t.Errorf("sync record %s: %+v, %v", s.Key, gotSync, err)
	}
	if n := l.metric(t, "helpdeskflow_service_facts_records_total"); n != 2 {
		t.Errorf("helpdeskflow_service_facts_records_total = %v, want 2", n)
	}
}

package dispatch_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// TestDispatcher_Run_SkipsWatermarks: the relay's watermark records reach
// no handler and count as no error.
func TestDispatcher_Run_SkipsWatermarks(t *testing.T) {
	pool := testenv.Postgres(t)
	_, brokers := testenv.Kafka(t)
	j := &journal{}
	reg := prometheus.NewRegistry()
	start(t, config(brokers, pool, "g-watermarks", reg, newRecorder("recorder", j)))
	s := uuid.New()
	e1, _ := json.Marshal(newEvent(s, 1))
	records := kafka.NewWatermarks(kafka.TopicEvents, helpdeskflow.Position{TxID: 7, Seq: 7}, 4)
	produceRecords(t, brokers, append(records, &kgo.Record{Key: []byte(s.String()), Value: e1})...)
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := len(j.handled("")); n < 1 {
			return errors.New("the event is not handled")
		}
		return nil
	})
	if n := len(j.handled("")); n != 1 {
		t.Errorf("%d events handled, want the one event", n)
	}
	if got := metric(t, reg, "helpdeskflow_dispatch_internal_errors_total", "kind", "decode"); got != 0 {
		t.Errorf("internal_errors_total{kind=decode} = %v, want 0", got)
	}
}

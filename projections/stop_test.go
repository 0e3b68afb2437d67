package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// A projector whose group cannot finish a rebalance (another member holds
// it) still stops promptly when its context is cancelled.
func TestProjector_StopsWhileGroupIsStuck(t *testing.T) {
	t.Parallel()
	conn, brokers, s := newScenarioTest(t)
	produce(t, brokers, s.events()...)
	const group = "g-stuck"

	holder, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(kafka.TopicEvents),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if fs := holder.PollFetches(ctx); fs.NumRecords() == 0 {
		t.Fatalf("holder polled nothing: %v", fs.Err())
	}
	// The holder never allows the rebalance the projector's join triggers.

	p := startProjector(t, conn, brokers, group, func(c *projections.Config) { c.ShutdownTimeout = time.Second })
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	_ = p.stop(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stop took %s, want it bounded by the shutdown timeouts", took)
	}
	holder.AllowRebalance()
}

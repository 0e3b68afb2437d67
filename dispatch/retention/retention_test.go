package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow/dispatch/retention"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// backlog is a kind's records: Purge deletes up to limit of those older
// than before and records each call's limit.
type backlog struct {
	name    string
	times   []time.Time
	limits  []int
	befores []time.Time
}

func (b *backlog) purge(_ context.Context, before time.Time, limit int) (retention.Deleted, error) {
	b.limits, b.befores = append(b.limits, limit), append(b.befores, before)
	var kept []time.Time
	n := int64(0)
	for _, at := range b.times {
		if at.Before(before) && n < int64(limit) {
			n++
			continue
		}
		kept = append(kept, at)
	}
	b.times = kept
	return retention.Deleted{b.name: n, b.name + "_related": 2 * n}, nil
}

// A run deletes each kind's old records in batches of at most Batch until
// a batch is not full, keeps the young ones, skips a kind kept for ever,
// and runs the other kinds when one fails; the metrics count it all.
func TestJob_RunOnce(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	old, young := now.Add(-40*24*time.Hour), now.Add(-time.Hour)
	deliveries := &backlog{name: "deliveries"}
	for range 12 {
		deliveries.times = append(deliveries.times, old)
	}
	deliveries.times = append(deliveries.times, young, young)
	forever := &backlog{name: "forever", times: []time.Time{old}}
	failed := errors.New("ClickHouse is away")
	reg := prometheus.NewRegistry()
	job, err := retention.New(retention.Config{
		Lock: testenv.Postgres(t), Batch: 5, Now: func() time.Time { return now }, Registerer: reg,
		Kinds: []retention.Kind{
			{Name: "broken", Keep: time.Hour, Purge: func(context.Context, time.Time, int) (retention.Deleted, error) { return nil, failed }},
			{Name: "deliveries", Keep: 30 * 24 * time.Hour, Purge: deliveries.purge},
			{Name: "forever", Keep: 0, Purge: forever.purge},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ran, err := job.RunOnce(context.Background())
	if !ran || !errors.Is(err, failed) {
		t.Fatalf("RunOnce = %v, %v; want it ran and reports the failed kind", ran, err)
	}
	if got, want := len(deliveries.limits), 3; got != want {
		t.Errorf("batches: got %d, want %d (5, 5, 2)", got, want)
	}
	for i, l := range deliveries.limits {
		if l != 5 {
			t.Errorf("batch %d: limit %d, want 5", i, l)
		}
		if want := now.Add(-30 * 24 * time.Hour); !deliveries.befores[i].Equal(want) {
			t.Errorf("batch %d: before %v, want %v", i, deliveries.befores[i], want)
		}
	}
	if len(deliveries.times) != 2 {
		t.Errorf("records left: got %d, want the 2 young ones", len(deliveries.times))
	}
	if len(forever.limits) != 0 {
		t.Errorf("a kind kept for ever was purged %d times", len(forever.limits))
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"helpdeskflow_retention_deleted_total", []string{"kind", "deliveries"}, 12},
		{"helpdeskflow_retention_deleted_total", []string{"kind", "deliveries_related"}, 24},
		{"helpdeskflow_retention_last_success_timestamp_seconds", []string{"kind", "deliveries"}, float64(now.Unix())},
		{"helpdeskflow_retention_last_success_timestamp_seconds", []string{"kind", "broken"}, 0},
		{"helpdeskflow_retention_errors_total", []string{"kind", "broken"}, 1},
		{"helpdeskflow_retention_errors_total", []string{"kind", "deliveries"}, 0},
		{"helpdeskflow_retention_runs_total", []string{"result", "failed"}, 1},
		{"helpdeskflow_retention_run_duration_seconds", nil, 1},
	} {
		if got := testenv.Metric(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// Two jobs on one database (two dispatchers) never run at once: while one
// runs, the other's run does nothing; after it, the other runs.
func TestJob_RunOnce_OneProcessAtATime(t *testing.T) {
	db := testenv.Postgres(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var secondCalls int
	newJob := func(purge func(context.Context, time.Time, int) (retention.Deleted, error), reg prometheus.Registerer) *retention.Job {
		job, err := retention.New(retention.Config{Lock: db, Registerer: reg,
			Kinds: []retention.Kind{{Name: "deliveries", Keep: time.Hour, Purge: purge}}})
		if err != nil {
			t.Fatal(err)
		}
		return job
	}
	first := newJob(func(context.Context, time.Time, int) (retention.Deleted, error) {
		close(entered)
		<-release
		return nil, nil
	}, nil)
	reg := prometheus.NewRegistry()
	second := newJob(func(context.Context, time.Time, int) (retention.Deleted, error) {
		secondCalls++
		return nil, nil
	}, reg)

	done := make(chan error, 1)
	go func() {
		ran, err := first.RunOnce(context.Background())
		if err == nil && !ran {
			err = errors.New("the first job did not run")
		}
		done <- err
	}()
	<-entered
	ran, err := second.RunOnce(context.Background())
	if err != nil || ran || secondCalls != 0 {
		t.Fatalf("second job while the first runs: ran %v, %d purges, %v; want it to do nothing", ran, secondCalls, err)
	}
	if got := testenv.Metric(t, reg, "helpdeskflow_retention_runs_total", "result", "locked"); got != 1 {
		t.Errorf("runs{locked} = %v, want 1", got)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ran, err := second.RunOnce(context.Background()); err != nil || !ran || secondCalls != 1 {
		t.Fatalf("second job after the first: ran %v, %d purges, %v; want it to run", ran, secondCalls, err)
	}
}

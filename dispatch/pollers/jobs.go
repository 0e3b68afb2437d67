package pollers

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// JobStore is the integration job queue as the worker uses it.
type JobStore interface {
	ClaimJobs(ctx context.Context, now time.Time, limit, perConnection int, inFlight map[uuid.UUID]int, lease time.Duration) ([]helpdeskflow.IntegrationJob, error)
	FinishJobs(ctx context.Context, fs []queues.FinishedJob) error
	JobQueue(ctx context.Context, now time.Time) ([]queues.JobQueueStat, error)
	PurgeJobs(ctx context.Context, before time.Time, limit int) (int64, error)
}

// JobRunner runs the jobs of one kind: one call to the outside service,
// bounded by ctx's deadline, never retried inside (the worker retries).
// RunJob must be safe for concurrent use and return promptly when ctx
// ends. A run that may be the last (j.LastAttempt()) and fails records its
// final outcome wherever the kind keeps one (Slack's notification log)
// before it returns.
type JobRunner interface {
	RunJob(ctx context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult
}

// Defaults of JobWorkerConfig.
const (
	DefaultJobMaxAttempts   = 6
	DefaultJobBackoff       = 5 * time.Second
	DefaultJobMaxBackoff    = 5 * time.Minute
	DefaultJobTimeout       = 30 * time.Second
	DefaultJobConcurrency   = 32
	DefaultJobPerConnection = 2
	DefaultJobLease         = 2 * time.Minute
	DefaultJobRetention     = 7 * 24 * time.Hour
)

// JobWorkerConfig configures a JobWorker. Store and Runners are required;
// zero fields take the defaults named on each.
type JobWorkerConfig struct {
	Store JobStore
	// Runners run the jobs, by kind (helpdeskflow.JobSlackNotification,
	// helpdeskflow.JobProfileLookup). A job of a kind without a runner is
	// retried (a newer worker may know it) and fails in the end.
	Runners map[string]JobRunner
	// Now defaults to time.Now.
	Now func() time.Time
	// MaxAttempts is how many runs a job gets before it fails for good
	// (default DefaultJobMaxAttempts, 6).
	MaxAttempts int
	// Backoff is the wait after a job's first failed run, doubling after
	// each further one up to MaxBackoff (defaults 5 s and 5 minutes: with
	// 6 attempts a job fails about 2.5 minutes after its first run). A
	// provider's Retry-After is waited out when longer, up to an hour.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds each run, all its requests included (default
	// DefaultJobTimeout, 30 s).
	Timeout time.Duration
	// Concurrency bounds the runs in flight in this worker (default 32),
	// PerConnection those of one connection (default 2), so a slow or hung
	// shop or Slack workspace holds at most PerConnection runs and delays
	// nobody else.
	Concurrency, PerConnection int
	// Lease is how long a claimed job is this worker's (default 2
	// minutes); it must exceed Timeout. After a crash another worker runs
	// the job once the lease has run out.
	Lease time.Duration
	// PollInterval is how often the queue is read when idle (default
	// 200 ms).
	PollInterval time.Duration
	// Retention is how long finished jobs are kept for the integration's
	// queue view (default 7 days).
	Retention  time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (c *JobWorkerConfig) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultJobMaxAttempts
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultJobBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = max(DefaultJobMaxBackoff, c.Backoff)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultJobTimeout
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultJobConcurrency
	}
	if c.PerConnection <= 0 {
		c.PerConnection = DefaultJobPerConnection
	}
	if c.Lease <= 0 {
		c.Lease = max(DefaultJobLease, 2*c.Timeout)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.Retention <= 0 {
		c.Retention = DefaultJobRetention
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// JobWorker runs the integration jobs the dispatcher's handlers queue
// (Slack notifications, customer lookups), outside the Kafka consume loop
// and outside any transaction: it leases due jobs, runs each with a
// timeout, retries temporary failures (rate limits after their
// Retry-After, 5xx, network errors, timeouts) with exponential backoff and
// fails a job for good after MaxAttempts runs or a permanent failure. At
// most PerConnection jobs of one connection run at once in a worker, so a
// hung partner holds only its own slots. Any number of workers, in any
// number of processes, share the queue.
type JobWorker struct {
	cfg JobWorkerConfig
	m   jobMetrics
	q   *queueWorker[helpdeskflow.IntegrationJob, queues.FinishedJob]
}

type jobMetrics struct {
	jobs           *prometheus.CounterVec
	failures       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	pending        *prometheus.GaugeVec
	oldestPending  *prometheus.GaugeVec
	inFlight       *prometheus.GaugeVec
	internalErrors prometheus.Counter
}

// NewJobWorker returns a worker, registering
// helpdeskflow_integration_jobs_total{kind,outcome} (a finished job's
// outcome, "retried" for a run that schedules a retry, "failed" for a job
// failed for good),
// helpdeskflow_integration_job_failures_total{kind,error_class},
// helpdeskflow_integration_job_duration_seconds{kind},
// helpdeskflow_integration_jobs_pending{kind},
// helpdeskflow_integration_jobs_oldest_pending_seconds{kind},
// helpdeskflow_integration_jobs_in_flight{kind} (this worker's) and
// helpdeskflow_integration_job_queue_errors_total. No label names a
// workspace or a connection. It returns an EValidation error without
// Store or Runners, or with a Lease not longer than Timeout.
func NewJobWorker(cfg JobWorkerConfig) (*JobWorker, error) {
	cfg.setDefaults()
	if cfg.Store == nil || len(cfg.Runners) == 0 {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "dispatch: JobWorkerConfig needs Store and Runners")
	}
	if cfg.Lease <= cfg.Timeout {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "dispatch: JobWorkerConfig.Lease (%s) must be longer than Timeout (%s)", cfg.Lease, cfg.Timeout)
	}
	var err error
	m := jobMetrics{
		jobs: metricreg.Register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_integration_jobs_total",
			Help: "Runs of integration jobs (Slack notifications, customer lookups) by kind and outcome: the finished job's outcome, retried, or failed (for good)."},
			[]string{"kind", "outcome"}), &err),
		failures: metricreg.Register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_integration_job_failures_total",
			Help: "Failed runs of integration jobs by kind and error class, retried or not."}, []string{"kind", "error_class"}), &err),
		duration: metricreg.Register(cfg.Registerer, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "helpdeskflow_integration_job_duration_seconds",
			Help: "Duration of integration job runs.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"kind"}), &err),
		pending: metricreg.Register(cfg.Registerer, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helpdeskflow_integration_jobs_pending",
			Help: "Integration jobs not finished yet (waiting, running or waiting for a retry)."}, []string{"kind"}), &err),
		oldestPending: metricreg.Register(cfg.Registerer, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helpdeskflow_integration_jobs_oldest_pending_seconds",
			Help: "Age of the oldest unfinished integration job."}, []string{"kind"}), &err),
		inFlight: metricreg.Register(cfg.Registerer, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helpdeskflow_integration_jobs_in_flight",
			Help: "Integration jobs running in this process."}, []string{"kind"}), &err),
		internalErrors: metricreg.Register(cfg.Registerer, prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_integration_job_queue_errors_total",
			Help: "Failures reading or writing the integration job queue (retried)."}), &err),
	}
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register integration job metrics", Err: err}
	}
	w := &JobWorker{cfg: cfg, m: m}
	w.q = newQueueWorker(queueConfig[helpdeskflow.IntegrationJob, queues.FinishedJob]{
		concurrency: cfg.Concurrency, perKey: cfg.PerConnection, lease: cfg.Lease, pollInterval: cfg.PollInterval,
		claim: w.claim,
		claimFailed: func(err error) {
			w.m.internalErrors.Inc()
			w.cfg.Logger.Warn("integration jobs: claiming failed; retrying", "err", err)
		},
		key:              func(j helpdeskflow.IntegrationJob) uuid.UUID { return j.ConnectionID },
		started:          func(j helpdeskflow.IntegrationJob) { w.m.inFlight.WithLabelValues(j.Kind).Inc() },
		ended:            func(j helpdeskflow.IntegrationJob) { w.m.inFlight.WithLabelValues(j.Kind).Dec() },
		run:              w.run,
		cancelRunsOnStop: true,
		finish:           w.record,
		chores:           []chore{{every: 5 * time.Second, do: w.queueStats}, {every: time.Hour, do: w.purge}},
	})
	return w, nil
}

// Run runs jobs until ctx ends. Then it cancels the runs in flight,
// releases their jobs (due again at once, the run not counted as an
// attempt), and returns nil.
func (w *JobWorker) Run(ctx context.Context) error {
	w.q.serve(ctx)
	return nil
}

// claim leases up to limit due jobs, at most room[c] of a connection c
// with runs in flight and perConnection of another, and gives each the
// configured MaxAttempts.
func (w *JobWorker) claim(ctx context.Context, limit, perConnection int, room map[uuid.UUID]int) ([]helpdeskflow.IntegrationJob, error) {
	inFlight := make(map[uuid.UUID]int, len(room))
	for id, n := range room {
		inFlight[id] = perConnection - n
	}
	jobs, err := w.cfg.Store.ClaimJobs(ctx, w.cfg.Now(), limit, perConnection, inFlight, w.cfg.Lease)
	for i := range jobs {
		jobs[i].MaxAttempts = w.cfg.MaxAttempts
	}
	return jobs, err
}

// run runs j once with the timeout and returns how it ended; when ctx has
// ended (the worker stops), the job is released, not failed.
func (w *JobWorker) run(ctx context.Context, j helpdeskflow.IntegrationJob) queues.FinishedJob {
	started := w.cfg.Now()
	runCtx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	result := w.call(runCtx, j)
	cancel()
	w.m.duration.WithLabelValues(j.Kind).Observe(w.cfg.Now().Sub(started).Seconds())
	at := w.cfg.Now()
	f := queues.FinishedJob{ID: j.ID, Attempt: j.Attempt, At: at}
	switch {
	case ctx.Err() != nil:
		// Stopping: the run was cut short, not failed. Another worker (or
		// this one after a restart) runs it again.
		f.Released = true
		f.Status = helpdeskflow.JobPending
	case result.Err == nil:
		f.Status, f.Outcome = helpdeskflow.JobDone, result.Outcome
		w.m.jobs.WithLabelValues(j.Kind, result.Outcome).Inc()
	default:
		class := result.ErrorClass
		if class == "" {
			class = "error"
		}
		f.ErrorClass, f.Error = class, result.Err.Error()
		w.m.failures.WithLabelValues(j.Kind, class).Inc()
		if result.Retry && !j.LastAttempt() {
			next := at.Add(max(w.backoff(j.Attempt), min(result.RetryAfter, time.Hour)))
			f.Status, f.NextAttemptAt = helpdeskflow.JobPending, &next
			w.m.jobs.WithLabelValues(j.Kind, "retried").Inc()
		} else {
			f.Status, f.Outcome = helpdeskflow.JobFailed, class
			w.m.jobs.WithLabelValues(j.Kind, "failed").Inc()
			w.cfg.Logger.Warn("integration jobs: a job failed for good", "kind", j.Kind, "job_id", j.ID, "workspace_id", j.WorkspaceID,
				"connection_id", j.ConnectionID, "event_id", j.EventID, "attempts", j.Attempt, "error_class", class, "err", result.Err)
		}
	}
	return f
}

// call runs j with its kind's runner, turning a panic into a retried
// failure so that one faulty runner cannot take down a process that runs
// every role.
func (w *JobWorker) call(ctx context.Context, j helpdeskflow.IntegrationJob) (result helpdeskflow.JobResult) {
	runner := w.cfg.Runners[j.Kind]
	if runner == nil {
		return helpdeskflow.JobResult{Err: fmt.Errorf("no runner for job kind %q in this process", j.Kind), ErrorClass: "unknown_kind", Retry: true}
	}
	defer func() {
		if p := recover(); p != nil {
			w.cfg.Logger.Error("integration jobs: runner panicked", "kind", j.Kind, "job_id", j.ID, "panic", p, "stack", string(debug.Stack()))
			result = helpdeskflow.JobResult{Err: fmt.Errorf("the %s runner panicked", j.Kind), ErrorClass: "internal", Retry: true}
		}
	}()
	return runner.RunJob(ctx, j)
}

// record writes a batch of run ends.
func (w *JobWorker) record(rows []queues.FinishedJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.cfg.Store.FinishJobs(ctx, rows); err != nil {
		// The leases run out and the jobs run again: at least once.
		w.m.internalErrors.Inc()
		w.cfg.Logger.Error("integration jobs: recording runs failed; the jobs will run again", "jobs", len(rows), "err", err)
	}
}

// backoff is the wait after failed run n (1-based).
func (w *JobWorker) backoff(n int) time.Duration {
	return exponentialBackoff(w.cfg.Backoff, 2, n, w.cfg.MaxBackoff)
}

// queueStats updates the pending gauges.
func (w *JobWorker) queueStats(ctx context.Context) {
	stats, err := w.cfg.Store.JobQueue(ctx, w.cfg.Now())
	if err != nil {
		return
	}
	w.m.pending.Reset()
	w.m.oldestPending.Reset()
	for kind := range w.cfg.Runners {
		w.m.pending.WithLabelValues(kind).Set(0)
		w.m.oldestPending.WithLabelValues(kind).Set(0)
	}
	for _, st := range stats {
		w.m.pending.WithLabelValues(st.Kind).Set(float64(st.Pending))
		w.m.oldestPending.WithLabelValues(st.Kind).Set(st.Oldest.Seconds())
	}
}

// purge deletes finished jobs older than the retention, a batch at a time.
func (w *JobWorker) purge(ctx context.Context) {
	before := w.cfg.Now().Add(-w.cfg.Retention)
	for ctx.Err() == nil {
		n, err := w.cfg.Store.PurgeJobs(ctx, before, 1000)
		if err != nil {
			if ctx.Err() == nil {
				w.m.internalErrors.Inc()
				w.cfg.Logger.Warn("integration jobs: purging finished jobs failed", "err", err)
			}
			return
		}
		if n < 1000 {
			return
		}
	}
}

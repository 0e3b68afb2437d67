// Package retention deletes what the system keeps only for a while: the
// scheduled job of the dispatcher role that, every few minutes, deletes
// each kind of old record (finished webhook deliveries and their attempts,
// expired Idempotency-Keys, skipped mail records, the request log's old
// partitions) a bounded batch at a time, on one process of the cluster at
// a time. What each kind keeps, and why, is in docs/retention.md.
package retention

import (
	"context"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// Locker is the cluster-wide lock one run holds (pg.DB.TryLock).
type Locker interface {
	// TryLock takes the lock name without waiting: ok is false when
	// another holder has it. While ok, unlock frees it (call it once).
	TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error)
}

// Deleted is what one batch deleted, in rows by kind: the kind's own rows
// and any that went with them (a webhook delivery's attempts).
type Deleted map[string]int64

// Kind is one kind of record the job deletes.
type Kind struct {
	// Name names the kind in metrics and logs, e.g. "webhook_deliveries".
	Name string
	// Keep is how long a record is kept (from when it stopped changing;
	// each kind's Purge says from what). 0 or less keeps it for ever: the
	// kind is never purged.
	Keep time.Duration
	// Purge deletes one batch of at most limit of the oldest records
	// older than before and reports the rows it deleted. The job calls it
	// again while the batch of the kind's own rows was full.
	Purge func(ctx context.Context, before time.Time, limit int) (Deleted, error)
}

// LockName is the advisory lock a run holds, so one process of the
// cluster runs the job at a time.
const LockName = "retention"

// Config configures a Job. Kinds and Lock are required. Interval (between
// runs) defaults to 10 minutes; each wait is Interval plus or minus up to
// Jitter (default Interval/5), so the dispatchers of a cluster do not try
// in step. Batch (rows per statement) defaults to 1,000. Between two
// batches the job waits Pause (default 20 ms) or as long as the last batch
// took, whichever is longer, so it spends at most half its time in a
// transaction: an open transaction holds back the commit horizon the relay
// publishes below (on a loaded 2-core machine a batch of 1,000 finished
// deliveries with their attempts took 15–88 ms, one of 5,000 150–293 ms). Now defaults to time.Now, Logger to slog.Default(); Registerer
// may be nil.
type Config struct {
	Kinds      []Kind
	Lock       Locker
	Interval   time.Duration
	Jitter     time.Duration
	Batch      int
	Pause      time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Job deletes old records of its kinds. Run runs it on a schedule, RunOnce
// once; any number of processes may run it, and the advisory lock lets one
// run at a time across all of them.
type Job struct {
	cfg Config
	m   metrics
}

type metrics struct {
	deleted     *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	errors      *prometheus.CounterVec
	runs        *prometheus.CounterVec
	duration    prometheus.Histogram
}

// New returns a job, registering helpdeskflow_retention_deleted_total{kind},
// helpdeskflow_retention_last_success_timestamp_seconds{kind},
// helpdeskflow_retention_errors_total{kind},
// helpdeskflow_retention_runs_total{result} (done, failed, locked: another
// process was running it) and helpdeskflow_retention_run_duration_seconds.
// It returns EValidation when Lock is missing or a kind has no name or
// Purge.
func New(cfg Config) (*Job, error) {
	if cfg.Lock == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "retention: Config needs Lock")
	}
	for _, k := range cfg.Kinds {
		if k.Name == "" || k.Purge == nil {
			return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "retention: every kind needs a Name and Purge")
		}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.Jitter <= 0 {
		cfg.Jitter = cfg.Interval / 5
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 20 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var err error
	j := &Job{cfg: cfg}
	j.m.deleted = metricreg.Register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "helpdeskflow_retention_deleted_total",
		Help: "Rows the retention job deleted (for the request log: rows of the partitions it dropped), by kind.",
	}, []string{"kind"}), &err)
	j.m.lastSuccess = metricreg.Register(cfg.Registerer, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "helpdeskflow_retention_last_success_timestamp_seconds",
		Help: "Unix time at which the retention job last finished a kind with nothing older than its retention left to delete.",
	}, []string{"kind"}), &err)
	j.m.errors = metricreg.Register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "helpdeskflow_retention_errors_total",
		Help: "Retention batches that failed, by kind (the next run tries again).",
	}, []string{"kind"}), &err)
	j.m.runs = metricreg.Register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "helpdeskflow_retention_runs_total",
		Help: "Runs of the retention job: done, failed (a kind failed), locked (another process was running it).",
	}, []string{"result"}), &err)
	j.m.duration = metricreg.Register(cfg.Registerer, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "helpdeskflow_retention_run_duration_seconds",
		Help:    "How long a run of the retention job took (runs that held the lock).",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
	}), &err)
	if err != nil {
		return nil, err
	}
	for _, k := range cfg.Kinds {
		j.m.deleted.WithLabelValues(k.Name)
		j.m.errors.WithLabelValues(k.Name)
	}
	return j, nil
}

// Run runs the job after a random part of the first interval (so the
// dispatchers started together do not all try at once) and then every
// Interval ± Jitter, until ctx ends. A failed run is logged and counted;
// the next one tries again. It returns nil when ctx ends.
func (j *Job) Run(ctx context.Context) error {
	for _, k := range j.cfg.Kinds {
		if k.Keep <= 0 {
			j.cfg.Logger.Info("retention: kept for ever (retention 0)", "kind", k.Name)
		}
	}
	wait := time.Duration(rand.Int64N(int64(j.cfg.Jitter) + 1))
	for poll.Sleep(ctx, wait) {
		if _, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
			j.cfg.Logger.Warn("retention: run failed; the next run tries again", "err", err)
		}
		wait = j.cfg.Interval - j.cfg.Jitter + time.Duration(rand.Int64N(2*int64(j.cfg.Jitter)+1))
	}
	return nil
}

// RunOnce takes the lock and, for each kind with a retention, deletes
// batch after batch of its records older than now minus its Keep until a
// batch is not full, pausing between batches (see Config). ran is false when another
// process holds the lock (nothing is deleted then). A kind that fails is
// left for the next run and the others still run; the error is the first
// failure, as returned by its Purge (or the lock's).
func (j *Job) RunOnce(ctx context.Context) (ran bool, err error) {
	unlock, ok, err := j.cfg.Lock.TryLock(ctx, LockName)
	if err != nil {
		j.m.runs.WithLabelValues("failed").Inc()
		return false, err
	}
	if !ok {
		j.m.runs.WithLabelValues("locked").Inc()
		j.cfg.Logger.Debug("retention: another process is running it")
		return false, nil
	}
	defer unlock()
	start := time.Now()
	var first error
	for _, k := range j.cfg.Kinds {
		if k.Keep <= 0 {
			continue
		}
		if err := j.purge(ctx, k); err != nil && first == nil {
			first = err
		}
	}
	j.m.duration.Observe(time.Since(start).Seconds())
	result := "done"
	if first != nil {
		result = "failed"
	}
	j.m.runs.WithLabelValues(result).Inc()
	return true, first
}

// purge deletes kind k's old records, a batch at a time.
func (j *Job) purge(ctx context.Context, k Kind) error {
	before := j.cfg.Now().Add(-k.Keep)
	total := Deleted{}
	batches := 0
	var took time.Duration
	for {
		if batches > 0 && !poll.Sleep(ctx, max(j.cfg.Pause, took)) {
			return ctx.Err()
		}
		start := time.Now()
		got, err := k.Purge(ctx, before, j.cfg.Batch)
		took = time.Since(start)
		batches++
		for kind, n := range got {
			j.m.deleted.WithLabelValues(kind).Add(float64(n))
			total[kind] += n
		}
		if err != nil {
			j.m.errors.WithLabelValues(k.Name).Inc()
			j.cfg.Logger.Warn("retention: deleting old records failed", "kind", k.Name, "before", before, "batches", batches, "err", err)
			return err
		}
		if got[k.Name] < int64(j.cfg.Batch) {
			break
		}
	}
	j.m.lastSuccess.WithLabelValues(k.Name).Set(float64(j.cfg.Now().Unix()))
	args := []any{"kind", k.Name, "before", before, "batches", batches}
	for _, kind := range slices.Sorted(maps.Keys(total)) {
		args = append(args, "deleted_"+kind, total[kind])
	}
	j.cfg.Logger.Info("retention: deleted old records", args...)
	return nil
}

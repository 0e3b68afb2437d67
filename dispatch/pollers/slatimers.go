package pollers

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/metricreg"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// SLATimers finds tickets whose SLA timer is due.
type SLATimers interface {
	// DueSLATimers returns up to limit tickets due at now, most overdue
	// first.
	DueSLATimers(ctx context.Context, now time.Time, limit int) ([]helpdeskflow.StreamRef, error)
}

// SLAChecker appends a ticket's due SLA events and schedules its next
// check (tickets.Service.CheckSLA).
type SLAChecker interface {
	CheckSLA(ctx context.Context, workspaceID, ticketID uuid.UUID) error
}

// SLAWorkerConfig configures an SLAWorker. Timers and Checker are
// required; Now defaults to time.Now (tests move a fake clock instead of
// sleeping), Interval to one second, Batch to 200, Logger to
// slog.Default(); Registerer may be nil.
type SLAWorkerConfig struct {
	Timers     SLATimers
	Checker    SLAChecker
	Now        func() time.Time
	Interval   time.Duration
	Batch      int
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// SLAWorker fires SLA timers: every Interval it asks for the tickets whose
// timer is due and has the checker append their ticket.sla_warning and
// ticket.sla_breached events. Timers live in Postgres, so they survive
// restarts; any number of workers may run, since each point is recorded
// under the ticket's stream lock and so fires once.
type SLAWorker struct {
	cfg    SLAWorkerConfig
	checks *prometheus.CounterVec
}

// NewSLAWorker returns a worker, registering
// helpdeskflow_sla_timer_checks_total{outcome} (ok, error).
func NewSLAWorker(cfg SLAWorkerConfig) (*SLAWorker, error) {
	if cfg.Timers == nil || cfg.Checker == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "dispatch: SLAWorkerConfig needs Timers and Checker")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &SLAWorker{cfg: cfg,
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_sla_timer_checks_total",
			Help: "Tickets the SLA timer worker checked because their timer was due, by outcome (ok, error)."}, []string{"outcome"}),
	}
	if cfg.Registerer != nil {
		var err error
		w.checks = metricreg.Register(cfg.Registerer, w.checks, &err)
		if err != nil {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register SLA worker metrics", Err: err}
		}
	}
	return w, nil
}

// Run checks due timers every Interval until ctx ends; it returns nil then.
func (w *SLAWorker) Run(ctx context.Context) error {
	return poll.Every(ctx, w.cfg.Interval, w.cfg.Logger, "SLA timers: pass", w.Tick)
}

// Tick runs one pass: it checks every ticket whose timer is due at Now
// (in batches, until none is due) and returns how many it checked. A
// ticket whose check fails stays due and is retried on the next pass.
func (w *SLAWorker) Tick(ctx context.Context) (int, error) {
	now := w.cfg.Now()
	checked := 0
	failed := map[uuid.UUID]bool{}
	// A check moves its ticket's timer past now; the bound only guards
	// against a ticket that would not move.
	for range maxBatchesPerTick {
		due, err := w.cfg.Timers.DueSLATimers(ctx, now, w.cfg.Batch+len(failed))
		if err != nil {
			return checked, err
		}
		progressed := false
		for _, ref := range due {
			if failed[ref.ID] {
				continue
			}
			progressed = true
			if err := w.cfg.Checker.CheckSLA(ctx, ref.WorkspaceID, ref.ID); err != nil {
				if ctx.Err() != nil {
					return checked, ctx.Err()
				}
				failed[ref.ID] = true
				w.checks.WithLabelValues("error").Inc()
				w.cfg.Logger.Error("SLA timers: check failed; retried next pass", "ticket_id", ref.ID, "err", err)
				continue
			}
			checked++
			w.checks.WithLabelValues("ok").Inc()
		}
		if !progressed || len(due) < w.cfg.Batch+len(failed) {
			return checked, nil
		}
	}
	return checked, nil
}

const maxBatchesPerTick = 100

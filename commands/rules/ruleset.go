package rules

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/sla"
)

// Set is a workspace's rules compiled for commands, at one rule-set
// version. It is shared read-only between commands.
type Set struct {
	version     int64
	automations []automation.Rule
	active      int
	// program is the active automations compiled once for every command;
	// programErr is why they do not compile (each command reports it).
	program    *automation.Program
	programErr error
	// policies are the SLA policies, for choosing a ticket's.
	policies []sla.Policy
}

// Compile decodes the automation rules and SLA policies of a rule set, each
// kind in the order it runs; EInternal when a stored definition does not
// decode.
func Compile(set helpdeskflow.RuleSet) (*Set, error) {
	w := &Set{version: set.Version}
	for _, rec := range RecordsOf(set, helpdeskflow.RuleKindAutomation) {
		a, err := DecodeAutomation(rec)
		if err != nil {
			return nil, err
		}
		w.automations = append(w.automations, a.Rule)
		if a.Active {
			w.active++
		}
	}
	w.program, w.programErr = automation.Compile(w.automations)
	for _, rec := range RecordsOf(set, helpdeskflow.RuleKindSLAPolicy) {
		p, err := DecodeSLAPolicy(rec)
		if err != nil {
			return nil, err
		}
		w.policies = append(w.policies, p.Policy)
	}
	return w, nil
}

// Automations are the automation rules, active or not, in the order they
// run.
func (s *Set) Automations() []automation.Rule { return s.automations }

// Policies are the SLA policies in the order they are tried.
func (s *Set) Policies() []sla.Policy { return s.policies }

// RunsAutomations reports whether any automation rule is active.
func (s *Set) RunsAutomations() bool { return s.active > 0 }

// WithoutAutomations is the set with its SLA policies alone, for a command
// that goes ahead without automations.
func (s *Set) WithoutAutomations() *Set { return &Set{version: s.version, policies: s.policies} }

// Run runs the active automation rules on in (see automation.Run) and
// records the run in m (nil records nothing). It returns
// EAutomationConflict, counted, when the rules conflict.
func (s *Set) Run(in automation.Input, m *Metrics) (automation.Result, error) {
	start := time.Now()
	var res automation.Result
	var err error
	switch {
	case s.programErr != nil:
		err = s.programErr
	case s.program != nil:
		res, err = s.program.Run(in, automation.Options{})
	default: // a Set made without Compile
		res, err = automation.Run(in, s.automations, automation.Options{})
	}
	m.observe(time.Since(start), s, res.Fired, err)
	return res, err
}

// SetTx is the workspace's rule set in a command's transaction.
type SetTx interface {
	// RuleSetSince returns the rule set, without its rules when its
	// version is still known.
	RuleSetSince(ctx context.Context, workspaceID uuid.UUID, known int64) (helpdeskflow.RuleSet, error)
	// DeferRuleSetSince is RuleSetSince sent with the transaction's next
	// statement; done gets its result when that round trip is back.
	DeferRuleSetSince(ctx context.Context, workspaceID uuid.UUID, known int64, done func(helpdeskflow.RuleSet, error))
}

// Cache keeps each workspace's compiled rules; a command checks the
// version in its own transaction (one cheap statement, which may ride with
// the command's first one: see Request) and compiles again only when the
// rules changed. The zero Cache is empty and ready; it is safe for
// concurrent use.
type Cache struct {
	mu          sync.Mutex
	byWorkspace map[uuid.UUID]*Set
}

// Of returns the workspace's rules as transaction tx sees them.
func (c *Cache) Of(ctx context.Context, tx SetTx, workspaceID uuid.UUID) (*Set, error) {
	cached, known := c.cached(workspaceID)
	set, err := tx.RuleSetSince(ctx, workspaceID, known)
	if err != nil {
		return nil, err
	}
	return c.use(workspaceID, cached, set)
}

// Pending is a workspace's rule set requested with a transaction's next
// statement (see Cache.Request).
type Pending struct {
	c           *Cache
	tx          SetTx
	workspaceID uuid.UUID
	cached      *Set
	known       int64
	got         bool
	set         helpdeskflow.RuleSet
	err         error
}

// Request asks for the workspace's rules with tx's next statement, which
// saves the version check a round trip; Get returns them after that
// statement.
func (c *Cache) Request(ctx context.Context, tx SetTx, workspaceID uuid.UUID) *Pending {
	cached, known := c.cached(workspaceID)
	p := &Pending{c: c, tx: tx, workspaceID: workspaceID, cached: cached, known: known}
	tx.DeferRuleSetSince(ctx, workspaceID, known, func(set helpdeskflow.RuleSet, err error) {
		p.got, p.set, p.err = true, set, err
	})
	return p
}

// Get returns the rules as the transaction sees them (Of's result). When
// the transaction sent no statement since Request, it sends the request
// now.
func (p *Pending) Get(ctx context.Context) (*Set, error) {
	if !p.got {
		set, err := p.tx.RuleSetSince(ctx, p.workspaceID, p.known)
		p.got, p.set, p.err = true, set, err
	}
	if p.err != nil {
		return nil, p.err
	}
	return p.c.use(p.workspaceID, p.cached, p.set)
}

// cached returns the workspace's compiled rules and their version (-1:
// none).
func (c *Cache) cached(workspaceID uuid.UUID) (*Set, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cached := c.byWorkspace[workspaceID]
	if cached == nil {
		return nil, -1
	}
	return cached, cached.version
}

// use returns the compiled rules of set (cached when its version is the
// cached one), keeping the newest compiled version.
func (c *Cache) use(workspaceID uuid.UUID, cached *Set, set helpdeskflow.RuleSet) (*Set, error) {
	if cached != nil && set.Version == cached.version {
		return cached, nil
	}
	compiled, err := Compile(set)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.byWorkspace == nil {
		c.byWorkspace = map[uuid.UUID]*Set{}
	}
	if cur := c.byWorkspace[workspaceID]; cur == nil || cur.version < compiled.version {
		c.byWorkspace[workspaceID] = compiled
	}
	c.mu.Unlock()
	return compiled, nil
}

// Metrics are the automation rules' Prometheus metrics; a nil *Metrics records
// nothing. Their labels are bounded: a rule's own counts would be a series
// per rule of every workspace, so they are totals here, and the rules
// behind each effect are in the events' metadata (rule_id, in the audit
// log and ClickHouse) and in the WARN line of each conflict.
type Metrics struct {
	evaluations, firings, conflicts prometheus.Counter
	evaluationTime                  prometheus.Histogram
}

// NewMetrics registers the automation metrics on reg:
// helpdeskflow_automation_evaluations_total (rule evaluations: each
// command adds its workspace's active rules),
// helpdeskflow_automation_firings_total (rules that fired),
// helpdeskflow_automation_conflicts_total (commands refused with
// automation_conflict) and helpdeskflow_automation_evaluation_seconds (one
// command's whole run).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_automation_evaluations_total",
			Help: "Automation rule evaluations: each command adds the number of its workspace's active ruleSet."}),
		firings: prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_automation_firings_total",
			Help: "Automation ruleSet that fired (each at most once per command); the rule of each effect is in its event's metadata."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_automation_conflicts_total",
			Help: "Commands refused with automation_conflict; the ruleSet are named in the WARN log line."}),
		evaluationTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "helpdeskflow_automation_evaluation_seconds",
			Help:    "Time to run a workspace's automation ruleSet for one command, every pass included.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025}}),
	}
	for _, c := range []prometheus.Collector{m.evaluations, m.firings, m.conflicts, m.evaluationTime} {
		if err := reg.Register(c); err != nil {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register command metrics", Err: err}
		}
	}
	return m, nil
}

func (m *Metrics) observe(d time.Duration, set *Set, fired []uuid.UUID, err error) {
	if m == nil {
		return
	}
	m.evaluationTime.Observe(d.Seconds())
	m.evaluations.Add(float64(set.active))
	m.firings.Add(float64(len(fired)))
	if helpdeskflow.ErrorCode(err) == helpdeskflow.EAutomationConflict {
		m.conflicts.Inc()
	}
}

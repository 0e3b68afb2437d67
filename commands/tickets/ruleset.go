package tickets

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/sla"
)

// workspaceRules is a workspace's rules compiled for commands, at one
// rule-set version. It is shared read-only between commands.
type workspaceRules struct {
	version     int64
	automations []automation.Rule
	active      int
	// policies are the SLA policies, for choosing a ticket's.
	policies []sla.Policy
}

// ruleCache keeps each workspace's compiled rules; a command checks the
// version in its own transaction (one cheap statement) and reloads only
// when the rules changed.
type ruleCache struct {
	mu          sync.Mutex
	byWorkspace map[uuid.UUID]*workspaceRules
}

// rulesOf returns the workspace's rules as transaction tx sees them.
func (s *Service) rulesOf(ctx context.Context, tx Tx, workspaceID uuid.UUID) (*workspaceRules, error) {
	s.rules.mu.Lock()
	cached := s.rules.byWorkspace[workspaceID]
	s.rules.mu.Unlock()
	known := int64(-1)
	if cached != nil {
		known = cached.version
	}
	set, err := tx.Rules.RuleSetSince(ctx, workspaceID, known)
	if err != nil {
		return nil, err
	}
	if cached != nil && set.Version == cached.version {
		return cached, nil
	}
	compiled, err := s.compileRules(set)
	if err != nil {
		return nil, err
	}
	s.rules.mu.Lock()
	if s.rules.byWorkspace == nil {
		s.rules.byWorkspace = map[uuid.UUID]*workspaceRules{}
	}
	if cur := s.rules.byWorkspace[workspaceID]; cur == nil || cur.version < compiled.version {
		s.rules.byWorkspace[workspaceID] = compiled
	}
	s.rules.mu.Unlock()
	return compiled, nil
}

func (s *Service) compileRules(set helpdeskflow.RuleSet) (*workspaceRules, error) {
	w := &workspaceRules{version: set.Version}
	for _, rec := range rules.RecordsOf(set, helpdeskflow.RuleKindAutomation) {
		a, err := rules.DecodeAutomation(rec)
		if err != nil {
			return nil, err
		}
		w.automations = append(w.automations, a.Rule)
		if a.Active {
			w.active++
		}
	}
	for _, rec := range rules.RecordsOf(set, helpdeskflow.RuleKindSLAPolicy) {
		p, err := rules.DecodeSLAPolicy(rec)
		if err != nil {
			return nil, err
		}
		w.policies = append(w.policies, p.Policy)
	}
	return w, nil
}

// taggedEvent is an event with its own metadata: automation effects carry
// the rule's, next to the command's own events.
type taggedEvent struct {
	helpdeskflow.NewEvent
	md helpdeskflow.Metadata
}

func tagged(md helpdeskflow.Metadata, events ...helpdeskflow.NewEvent) []taggedEvent {
	out := make([]taggedEvent, len(events))
	for i, e := range events {
		out[i] = taggedEvent{e, md}
	}
	return out
}

// runAutomations runs the workspace's active rules for one command and
// returns their effects as events, each with metadata naming its rule and
// version (channel automation, caused by the command's event causation).
// It returns EAutomationConflict, counted per rule, when the rules
// conflict; nothing is appended then.
func (s *Service) runAutomations(rules *workspaceRules, in automation.Input, md helpdeskflow.Metadata, causation uuid.UUID) ([]taggedEvent, error) {
	if rules.active == 0 {
		return nil, nil
	}
	start := time.Now()
	res, err := automation.Run(in, rules.automations, automation.Options{})
	s.metrics.observe(time.Since(start), rules, res.Fired, err)
	if err != nil {
		return nil, err
	}
	effects := make(map[uuid.UUID]helpdeskflow.TicketUpdated, len(res.Effects))
	for _, e := range res.Effects {
		effects[e.RuleID] = e.Update
	}
	versions := make(map[uuid.UUID]int64, len(rules.automations))
	for _, r := range rules.automations {
		versions[r.ID] = r.Version
	}
	var out []taggedEvent
	for _, id := range res.Fired {
		ruleMD := helpdeskflow.Metadata{
			Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorRule, ID: id.String()}, Channel: helpdeskflow.ChannelAutomation,
			RequestID: md.RequestID, RuleID: id.String(), RuleVersion: versions[id],
			CausationID: causation.String(), CorrelationID: md.CorrelationID,
		}
		if ruleMD.CorrelationID == "" {
			ruleMD.CorrelationID = md.RequestID
		}
		if u, ok := effects[id]; ok {
			e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketUpdated, u)
			if err != nil {
				return nil, err
			}
			out = append(out, taggedEvent{e, ruleMD})
		}
		for _, a := range res.Async {
			if a.RuleID != id {
				continue
			}
			e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketNotificationRequested, helpdeskflow.NotificationRequested{Action: a.Type, Value: a.Value})
			if err != nil {
				return nil, err
			}
			out = append(out, taggedEvent{e, ruleMD})
		}
	}
	return out, nil
}

// appendTagged appends events to ref at version, one Append per run of
// events sharing metadata (they all go out in the same round trip), and
// returns the stored events.
func (s *Service) appendTagged(ctx context.Context, tx Tx, ref helpdeskflow.StreamRef, version int64, events []taggedEvent) ([]helpdeskflow.Event, error) {
	out := make([]helpdeskflow.Event, 0, len(events))
	for start := 0; start < len(events); {
		end := start + 1
		for end < len(events) && events[end].md == events[start].md {
			end++
		}
		batch := make([]helpdeskflow.NewEvent, 0, end-start)
		for _, e := range events[start:end] {
			batch = append(batch, e.NewEvent)
		}
		if _, err := tx.Events.Append(ctx, ref, version, events[start].md, batch); err != nil {
			return nil, err
		}
		for _, e := range events[start:end] {
			version++
			out = append(out, stored(e.NewEvent, ref, version, e.md))
		}
		start = end
	}
	return out, nil
}

// Metrics are the command side's Prometheus metrics; a nil *Metrics records
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
			Help: "Automation rule evaluations: each command adds the number of its workspace's active rules."}),
		firings: prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_automation_firings_total",
			Help: "Automation rules that fired (each at most once per command); the rule of each effect is in its event's metadata."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "helpdeskflow_automation_conflicts_total",
			Help: "Commands refused with automation_conflict; the rules are named in the WARN log line."}),
		evaluationTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "helpdeskflow_automation_evaluation_seconds",
			Help:    "Time to run a workspace's automation rules for one command, every pass included.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025}}),
	}
	for _, c := range []prometheus.Collector{m.evaluations, m.firings, m.conflicts, m.evaluationTime} {
		if err := reg.Register(c); err != nil {
			return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "register command metrics", Err: err}
		}
	}
	return m, nil
}

func (m *Metrics) observe(d time.Duration, rules *workspaceRules, fired []uuid.UUID, err error) {
	if m == nil {
		return
	}
	m.evaluationTime.Observe(d.Seconds())
	m.evaluations.Add(float64(rules.active))
	m.firings.Add(float64(len(fired)))
	if helpdeskflow.ErrorCode(err) == helpdeskflow.EAutomationConflict {
		m.conflicts.Inc()
	}
}

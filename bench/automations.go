package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
)

// The automations phase: the ticket create rate with automationRules active
// rules against the rate with none, in the same run (issue 15: "100
// active rules cost ≤ 15% of the rate").
const (
	automationRules       = 100
	targetAutomationRatio = 0.85 // creates/s with the rules ÷ without
	automationBodyDomain  = "example.com"
)

// automationOrder is the order of the rounds, each in a workspace of its
// own: true has the rules. Without, with, with, without (ABBA), so that a
// drift over the phase (tables growing, background merges) weighs on both
// sides alike.
var automationOrder = []bool{false, true, true, false}

// automations is the automations phase as results.json shows it.
type automations struct {
	Concurrency      int               `json:"concurrency"`
	Rules            int               `json:"rules"`
	FiringRules      int               `json:"rules_matching_bench_tickets"`
	RoundOrder       string            `json:"round_order"`
	WarmupSeconds    float64           `json:"warmup_seconds_per_round"`
	DurationSeconds  float64           `json:"measured_seconds_per_round"`
	RuleSetupSeconds float64           `json:"rule_setup_seconds"`
	Without          autoSide          `json:"without_rules"`
	With             autoSide          `json:"with_rules"`
	Ratio            float64           `json:"ratio_creates_per_second"` // With ÷ Without
	TargetRatio      float64           `json:"target_ratio"`
	TargetMet        bool              `json:"target_met"`
	Probe            automationProbe   `json:"probe"`
	Rounds           []autoRound       `json:"rounds"`
	ExampleRules     []json.RawMessage `json:"example_rules"`
}

// autoSide is one side of the comparison: its rounds together.
type autoSide struct {
	Rounds    int            `json:"rounds"`
	Requests  int64          `json:"requests"`
	Errors    int64          `json:"errors"`
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"per_second"`
	LatencyMs latencySummary `json:"latency_ms"`
	// CPU time per create over the measured windows, by process.
	CPUPerCreateMs cpuPerOp `json:"cpu_ms_per_create"`
	// EventsPerCreate is events appended per successful create over the
	// rounds (warm-ups included): the rules' effects add ticket.updated events.
	EventsPerCreate float64 `json:"events_appended_per_create"`
}

// autoRound is one round: fresh workspace, rules or none, one load.
type autoRound struct {
	loadStats
	WithRules      bool        `json:"with_rules"`
	Rules          int         `json:"rules"`
	WorkspaceID    string      `json:"workspace_id"`
	ServerMs       histSummary `json:"server_create_ms"` // dev's own POST /v1/tickets latency, warm-up included
	CPU            cpuSplit    `json:"cpu"`
	EventsAppended float64     `json:"events_appended"` // warm-up included
	CatchUpSeconds float64     `json:"projection_catch_up_seconds"`
	// The bench database over the measured window: tuples returned per
	// create (loading the rules shows here) and pg_stat_activity samples.
	TuplesReturnedPerCreate float64    `json:"postgres_tuples_returned_per_create"`
	PostgresActivity        pgActivity `json:"postgres_activity"`
	PostgresError           string     `json:"postgres_error,omitempty"`
}

// automationProbe is one ticket created in a rule workspace before its
// load, whose answer shows whether the rules ran.
type automationProbe struct {
	Subject  string   `json:"subject"`
	Expected []string `json:"expected"`
	Missing  []string `json:"missing,omitempty"`
	Priority string   `json:"priority"`
	Team     *string  `json:"team"`
	Tags     []string `json:"tags"`
	Fired    bool     `json:"rules_fired"`
	Error    string   `json:"error,omitempty"`
}

// runAutomations measures creates at one concurrency in fresh workspaces,
// alternately without rules and with automationRules active rules.
func (b *bench) runAutomations(ctx context.Context, client, metricsClient *nethttp.Client, bodies [][]byte) error {
	c := b.o.automationConcurrency
	d := max(b.o.duration/2, time.Second)
	rules, firing := automationRuleSet(automationRules)
	a := &automations{Concurrency: c, Rules: len(rules), FiringRules: firing, RoundOrder: roundOrder(automationOrder),
		WarmupSeconds: b.o.warmup.Seconds(), DurationSeconds: d.Seconds(), TargetRatio: targetAutomationRatio}
	for _, i := range []int{0, 1, 2, 3, 4, 5, 25} {
		if i < len(rules) {
			raw, _ := json.Marshal(rules[i])
			a.ExampleRules = append(a.ExampleRules, raw)
		}
	}
	b.res.Automations = a

	// Set up every round's workspace first, so that a server without the
	// rules API costs no load, and the rounds follow each other closely.
	type roundSetup struct{ wsID, key, label string }
	setups := make([]roundSetup, len(automationOrder))
	for round, withRules := range automationOrder {
		label := "without rules"
		if withRules {
			label = fmt.Sprintf("with %d rules", len(rules))
		}
		wsID, key, err := b.createWorkspace(ctx, fmt.Sprintf("bench automations round %d (%s)", round+1, label))
		if err != nil {
			return fmt.Errorf("automations: %w", err)
		}
		setups[round] = roundSetup{wsID, key, label}
		// The admin category too: the default allows 120 calls a minute.
		raised := []string{helpdeskflow.RateTicketsCreate, helpdeskflow.RateTicketsRead, helpdeskflow.RateAdmin}
		if err := raiseLimits(ctx, client, b.dev.url, key, raised...); err != nil {
			return fmt.Errorf("automations: workspace %s: %w", wsID, err)
		}
		if !withRules {
			continue
		}
		start := time.Now()
		for _, r := range rules {
			if err := createRule(ctx, client, b.dev.url, key, r); err != nil {
				if errors.Is(err, errNoAutomationsAPI) {
					b.res.note("automations phase skipped: %v", err)
					b.res.Automations = nil
					return nil
				}
				return fmt.Errorf("automations: workspace %s: %w", wsID, err)
			}
		}
		a.RuleSetupSeconds = round3(a.RuleSetupSeconds + time.Since(start).Seconds())
		logf("automations: %d rules created in workspace %s in %.1f s", len(rules), wsID, time.Since(start).Seconds())
		if a.Probe.Subject != "" {
			continue
		}
		a.Probe = probeAutomations(ctx, client, b.dev.url, key)
		if a.Probe.Error == "" {
			b.created++
		}
		switch {
		case a.Probe.Error != "":
			b.res.note("automations: the probe ticket failed: %s", a.Probe.Error)
		case !a.Probe.Fired:
			b.res.note("automations: no rule fired on the probe ticket (priority %s, team %s, tags %v): POST /v1/tickets does not run the rules, so the ratio does not measure them",
				a.Probe.Priority, deref(a.Probe.Team), a.Probe.Tags)
		case len(a.Probe.Missing) > 0:
			b.res.note("automations: the probe ticket lacks %s (priority %s, team %s, tags %v)", strings.Join(a.Probe.Missing, ", "),
				a.Probe.Priority, deref(a.Probe.Team), a.Probe.Tags)
		}
	}
	logf("automations: probe ticket: priority %s, team %s, tags %v; missing: %s", a.Probe.Priority, deref(a.Probe.Team), a.Probe.Tags,
		orNone(a.Probe.Missing, a.Probe.Error))
	if _, _, err := settle(ctx, b.ch, b.chDB, b.created, b.o.settleTimeout); err != nil {
		b.res.note("before the automations rounds: %v", err)
	}

	metricsURL := b.dev.url + "/metrics"
	var lat [2][]time.Duration
	var events [2]float64
	var created [2]int64
	var cpuSecs [2]cpuPerOp
	for round, withRules := range automationOrder {
		wsID, key, label := setups[round].wsID, setups[round].key, setups[round].label
		logf("automations round %d/%d (%s, workspace %s): c=%d, %s warm-up + %s", round+1, len(automationOrder), label, wsID, c, b.o.warmup, d)
		devTarget := target{url: b.dev.url + "/v1/tickets", key: key, wantStatus: 201}
		w := b.openWindow(ctx, metricsClient, metricsURL, b.o.warmup)
		var bodyIndex atomic.Uint64 // every round sends the same bodies in the same order
		ls, byLabel := runClosedLoop(ctx, c, b.o.warmup, d, nil, func(ctx context.Context, _ int) outcome {
			body := bodies[bodyIndex.Add(1)%uint64(len(bodies))]
			id, kind, err := post(ctx, client, devTarget, body)
			return outcome{label: "create", id: id, kind: kind, err: err}
		})
		ws := w.close(ctx)
		b.created += uint64(ls.Requests + ls.WarmupRequests)

		p := autoRound{loadStats: ls, WithRules: withRules, WorkspaceID: wsID, ServerMs: ws.serverLatency("POST", "/v1/tickets"), CPU: ws.CPU,
			PostgresActivity: ws.Activity, PostgresError: ws.PgErr}
		if ls.Requests > 0 && ws.PgErr == "" {
			p.TuplesReturnedPerCreate = round3(ws.PgDelta.Returned / float64(ls.Requests))
		}
		if withRules {
			p.Rules = len(rules)
		}
		if ws.before != nil && ws.after != nil {
			p.EventsAppended = ws.after.sum("helpdeskflow_events_appended_total", nil) - ws.before.sum("helpdeskflow_events_appended_total", nil)
		}
		side := 0
		if withRules {
			side = 1
		}
		lat[side] = append(lat[side], byLabel["create"].ok()...)
		events[side] += p.EventsAppended
		created[side] += ls.Requests + ls.WarmupRequests
		cpuSecs[side].addRound(p.CPU, ls.Seconds)
		if ls.Errors > 0 {
			b.res.note("automations round %d (%s): %d of %d creates failed (%v); the first: %s", round+1, label, ls.Errors, ls.Errors+ls.Requests,
				ls.ErrorsByKind, ls.FirstError)
		}
		b.disturbance(fmt.Sprintf("automations round %d (%s)", round+1, label), p.CPU, ws.Activity.AvgOtherDBs)

		// Each round starts with the pipeline idle, as the create levels do.
		dd, _, err := settle(ctx, b.ch, b.chDB, b.created, b.o.settleTimeout)
		p.CatchUpSeconds = round3(dd.Seconds())
		if err != nil {
			b.res.note("after automations round %d: %v", round+1, err)
		}
		if _, err := drainPipeline(ctx, metricsClient, metricsURL, 30*time.Second); err != nil {
			b.res.note("after automations round %d: %v", round+1, err)
		}
		a.Rounds = append(a.Rounds, p)
		logf("automations round %d (%s): %.0f creates/s, p50 %.1f ms, p99 %.1f ms, errors %d, %.2f events/create; projection caught up %.1f s after",
			round+1, label, ls.PerSecond, ls.LatencyMs.P50, ls.LatencyMs.P99, ls.Errors,
			p.EventsAppended/float64(max(ls.Requests+ls.WarmupRequests, 1)), dd.Seconds())
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	for side, s := range []*autoSide{&a.Without, &a.With} {
		for _, p := range a.Rounds {
			if p.WithRules != (side == 1) {
				continue
			}
			s.Rounds++
			s.Requests += p.Requests
			s.Errors += p.Errors
			s.Seconds += p.Seconds
		}
		s.Seconds = round3(s.Seconds)
		if s.Seconds > 0 {
			s.PerSecond = round1(float64(s.Requests) / s.Seconds)
		}
		s.LatencyMs = summarize(lat[side])
		if s.Requests > 0 {
			s.CPUPerCreateMs = cpuSecs[side].msPer(s.Requests)
		}
		if created[side] > 0 {
			s.EventsPerCreate = round3(events[side] / float64(created[side]))
		}
	}
	if a.Without.PerSecond > 0 {
		a.Ratio = round3(a.With.PerSecond / a.Without.PerSecond)
	}
	a.TargetMet = a.automationsValid() && a.Ratio >= targetAutomationRatio
	logf("automations: %.0f creates/s with %d rules, %.0f without: ratio %.3f (target >= %.2f: %s)", a.With.PerSecond, a.Rules,
		a.Without.PerSecond, a.Ratio, targetAutomationRatio, passMiss(a.TargetMet))

	b.res.ReadModel.Created = b.created
	if n, err := projectedTickets(ctx, b.ch, b.chDB); err == nil {
		b.res.ReadModel.Projected = n
	}
	return nil
}

// automationsValid says whether the comparison measured what it should:
// both sides ran without errors and the rules fired on the probe.
func (a *automations) automationsValid() bool {
	return a.Without.Requests > 0 && a.With.Requests > 0 && a.Without.Errors == 0 && a.With.Errors == 0 && a.Probe.Fired
}

func roundOrder(order []bool) string {
	var parts []string
	for _, w := range order {
		if w {
			parts = append(parts, "rules")
		} else {
			parts = append(parts, "none")
		}
	}
	return strings.Join(parts, ", ")
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

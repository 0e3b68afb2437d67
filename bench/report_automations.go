package main

import (
	"fmt"
	"io"
	"strings"
)

// automationTarget adds the automations target: creates/s with the rules at
// least targetAutomationRatio of the rate without (the rules cost at most
// the rest), as a percentage. It passes only when both sides ran without
// errors and the rules fired on the probe ticket.
func (r *results) automationTarget(add func(name, target, unit string, found bool, v float64, pass bool), detail func(string, ...any)) {
	a := r.Automations
	target := fmt.Sprintf(">= %.0f", targetAutomationRatio*100)
	if a == nil || a.Without.Requests == 0 || a.With.Requests == 0 {
		add(fmt.Sprintf("creates/s with %d rules ÷ none", automationRules), target, "%", false, 0, false)
		return
	}
	name := fmt.Sprintf("creates/s with %d rules ÷ none (c=%d)", a.Rules, a.Concurrency)
	switch {
	case a.Probe.Error != "" || !a.Probe.Fired:
		name += " (rules did not fire)"
	case a.Without.Errors+a.With.Errors > 0:
		name += fmt.Sprintf(" (%d failed)", a.Without.Errors+a.With.Errors)
	}
	a.TargetMet = a.automationsValid() && a.Ratio >= targetAutomationRatio
	add(name, target, "%", true, a.Ratio*100, a.TargetMet)
	detail("%.0f creates/s with the rules ÷ %.0f without = %.3f: the rules cost %.1f%% of the rate (target ≤ %.0f%%); %d rounds each side, same run",
		a.With.PerSecond, a.Without.PerSecond, a.Ratio, (1-a.Ratio)*100, (1-targetAutomationRatio)*100, a.With.Rounds)
}

// automationCPURows adds the automations rounds to a CPU split table.
func (r *results) automationCPURows(row func(name string, s cpuSplit)) {
	if a := r.Automations; a != nil {
		for i, p := range a.Rounds {
			row(fmt.Sprintf("auto %d %s", i+1, sideName(p.WithRules)), p.CPU)
		}
	}
}

func sideName(withRules bool) string {
	if withRules {
		return "rules"
	}
	return "none"
}

// targetLine states the automations target and whether it was met.
func (a *automations) targetLine() string {
	verdict := passMiss(a.TargetMet)
	why := ""
	switch {
	case a.Probe.Error != "":
		why = "; not valid: the probe ticket failed"
	case !a.Probe.Fired:
		why = "; not valid: no rule fired on the probe ticket"
	case a.Without.Errors+a.With.Errors > 0:
		why = fmt.Sprintf("; not valid: %d creates failed", a.Without.Errors+a.With.Errors)
	}
	return fmt.Sprintf("Target: %d active rules cost ≤ %.0f%% of the rate (creates/s with them ≥ %.2f × without): %s (ratio %.3f = %.1f / %.1f creates/s%s)",
		a.Rules, (1-a.TargetRatio)*100, a.TargetRatio, verdict, a.Ratio, a.With.PerSecond, a.Without.PerSecond, why)
}

// printAutomations writes the automations section of the table.
func (r *results) printAutomations(w io.Writer) {
	a := r.Automations
	if a == nil {
		return
	}
	fmt.Fprintf(w, "\nAutomations: POST /v1/tickets at c=%d, fresh workspace per round (%s; %.0f s warm-up + %.0f s each), %d active rules (%d match the bench's tickets) vs none\n",
		a.Concurrency, a.RoundOrder, a.WarmupSeconds, a.DurationSeconds, a.Rules, a.FiringRules)
	fmt.Fprintf(w, "%-10s %11s %9s %9s %9s %7s %13s %13s %13s\n", "", "creates/s", "p50 ms", "p99 ms", "max ms", "errors", "dev CPU ms", "machine ms", "events/create")
	for _, s := range []struct {
		name string
		s    autoSide
	}{{"none", a.Without}, {fmt.Sprintf("%d rules", a.Rules), a.With}} {
		fmt.Fprintf(w, "%-10s %11.0f %9.2f %9.2f %9.1f %7d %13.2f %13.2f %13.2f\n", s.name, s.s.PerSecond, s.s.LatencyMs.P50, s.s.LatencyMs.P99,
			s.s.LatencyMs.Max, s.s.Errors, s.s.CPUPerCreateMs.Dev, s.s.CPUPerCreateMs.Machine, s.s.EventsPerCreate)
	}
	for i, p := range a.Rounds {
		fmt.Fprintf(w, "  round %d %-5s %7.0f creates/s, p50 %6.2f ms, p99 %6.2f ms, errors %d; server p50/p99 %.2f/%.2f ms; pg tuples/create %.0f; catch-up %.1f s\n",
			i+1, sideName(p.WithRules), p.PerSecond, p.LatencyMs.P50, p.LatencyMs.P99, p.Errors, p.ServerMs.P50, p.ServerMs.P99, p.TuplesReturnedPerCreate, p.CatchUpSeconds)
	}
	fmt.Fprintf(w, "  probe ticket: priority %s, team %s, tags %s; missing: %s\n", a.Probe.Priority, deref(a.Probe.Team),
		strings.Join(a.Probe.Tags, ","), orNone(a.Probe.Missing, a.Probe.Error))
	fmt.Fprintf(w, "%s\n", a.targetLine())
}

func orNone(missing []string, err string) string {
	if err != "" {
		return "(failed: " + err + ")"
	}
	if len(missing) == 0 {
		return "none"
	}
	return strings.Join(missing, ", ")
}

// markdownAutomations writes the automations section of summary.md.
func (r *results) markdownAutomations(w io.Writer) {
	a := r.Automations
	if a == nil {
		return
	}
	fmt.Fprintf(w, "\n## Automations (POST /v1/tickets with %d active rules vs none, c=%d)\n\n", a.Rules, a.Concurrency)
	fmt.Fprintf(w, "Each round creates tickets in a fresh workspace (`helpdeskflow workspace create`, rate limits raised like the demo workspace's) with the bodies and the closed-loop load of the create phase, %.0f s warm-up + %.0f s measured; rounds in the order %s, so that a drift over the phase weighs on both sides; the projection caught up between rounds. A rule workspace gets %d active rules through `POST /v1/automations` (%.1f s for all of them): %d match no bench ticket (a keyword in the subject or the message, a customer address, a tag, a partner domain with a priority), %d do (example.com customers' low and normal priorities become high; `ticket.priority changed_to urgent` adds a tag; a subject mentioning a refund adds a tag; `changed_to high` with the tag vip sets the team, in the second pass after the first rule). The probe ticket, created in the first rule workspace before its load, shows whether the rules ran; events appended per create show what their changes add.\n\n",
		a.WarmupSeconds, a.DurationSeconds, a.RoundOrder, a.Rules, a.RuleSetupSeconds, a.Rules-a.FiringRules, a.FiringRules)
	fmt.Fprintf(w, "| rules | rounds | creates/s | p50 ms | p99 ms | max ms | errors | CPU ms/create: dev | postgres | clickhouse | machine | events appended/create |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range []struct {
		n int
		s autoSide
	}{{0, a.Without}, {a.Rules, a.With}} {
		x := s.s.CPUPerCreateMs
		fmt.Fprintf(w, "| %d | %d | %.0f | %.2f | %.2f | %.1f | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", s.n, s.s.Rounds, s.s.PerSecond,
			s.s.LatencyMs.P50, s.s.LatencyMs.P99, s.s.LatencyMs.Max, s.s.Errors, x.Dev, x.Postgres, x.ClickHouse, x.Machine, s.s.EventsPerCreate)
	}
	fmt.Fprintf(w, "\n**%s.**\n\n", a.targetLine())
	fmt.Fprintf(w, "| round | rules | workspace | creates/s | p50 ms | p99 ms | errors | server p50 / p99 ms | events appended | catch-up s |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for i, p := range a.Rounds {
		fmt.Fprintf(w, "| %d | %d | `%s` | %.0f | %.2f | %.2f | %d | %.2f / %.2f | %.0f | %.1f |\n", i+1, p.Rules, p.WorkspaceID, p.PerSecond,
			p.LatencyMs.P50, p.LatencyMs.P99, p.Errors, p.ServerMs.P50, p.ServerMs.P99, p.EventsAppended, p.CatchUpSeconds)
	}
	fmt.Fprintf(w, "\nProbe ticket (`%s`, priority normal, tags probe and vip): priority %s, team %s, tags %s; expected %s; missing: %s.\n",
		a.Probe.Subject, a.Probe.Priority, deref(a.Probe.Team), strings.Join(a.Probe.Tags, ", "), strings.Join(a.Probe.Expected, ", "),
		orNone(a.Probe.Missing, a.Probe.Error))
	fmt.Fprintf(w, "\nPostgres during each round (bench database, measured window; `pg_stat_activity` every 50 ms, share of non-idle backend observations):\n\n")
	for i, p := range a.Rounds {
		pg := p.PostgresActivity
		fmt.Fprintf(w, "- **round %d (%d rules)**: %.0f tuples returned per create, %.1f non-idle backends on average. Waits: %s%s%s.\n",
			i+1, p.Rules, p.TuplesReturnedPerCreate, pg.AvgNonIdle, shares(pg.WaitEvents, 5), errSuffix(p.PostgresError), errorsSuffix(p.loadStats))
		for _, st := range pg.Statements[:min(len(pg.Statements), 4)] {
			fmt.Fprintf(w, "  - %.1f%% `%s`\n", st.Share*100, strings.ReplaceAll(st.Key, "`", "'"))
		}
	}
}

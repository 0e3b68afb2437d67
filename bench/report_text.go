package main

import (
	"fmt"
	"io"
	"strings"
)

func (r *results) header() string {
	tree := r.Config.SourceTreeSHA256
	if len(tree) > 12 {
		tree = tree[:12]
	}
	return fmt.Sprintf("source tree %s; %d CPUs (%s), Go %s; Postgres %s fsync=%s synchronous_commit=%s; ClickHouse %s; all roles + embedded Kafka in one `helpdeskflow dev` process; %.0f s measured after %.0f s warm-up per phase; avg body %d B, %d customers",
		tree, r.Host.CPUs, r.Host.CPUModel, r.Host.GoVersion, r.Postgres["server_version"], r.Postgres["fsync"], r.Postgres["synchronous_commit"],
		r.ClickHouseVersion, r.Config.DurationSeconds, r.Config.WarmupSeconds, r.RequestBodyBytes, r.Config.DistinctCustomers)
}

// print writes the human-readable table.
func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "\nHelpDeskFlow end-to-end benchmark\n%s\n\n", r.header())

	fmt.Fprintf(w, "Ticket creates, POST /v1/tickets (client side)\n")
	fmt.Fprintf(w, "%5s %11s %11s %9s %9s %9s %7s | %11s %7s | %11s %7s\n", "c", "creates/s", "sustained/s", "p50 ms", "p99 ms", "max ms", "errors",
		"pgbench tps", "ratio", "empty req/s", "ratio")
	for i, c := range r.Creates {
		rt := r.Ratios[i]
		fmt.Fprintf(w, "%5d %11.0f %11.0f %9.2f %9.2f %9.1f %7d | %11.0f %7.3f | %11.0f %7.3f\n", c.Concurrency, c.PerSecond, c.SustainedPerSec,
			c.LatencyMs.P50, c.LatencyMs.P99, c.LatencyMs.Max, c.Errors, rt.PgbenchTPS, rt.CreatesOverPgbench, rt.EmptyPerSec, rt.CreatesOverEmptyReq)
	}
	fmt.Fprintf(w, "(sustained = creates ÷ (window + time until the projection caught up))\n")

	fmt.Fprintf(w, "\nServer side during each create phase (/metrics deltas; bucket-interpolated percentiles)\n")
	fmt.Fprintf(w, "%5s %17s %17s %17s %10s %10s %11s %11s %9s %9s\n", "c", "http p50/p99 ms", "append p50/p99", "lock p50/p99",
		"relay lag", "proj lag", "batch mean", "group mean", "catch-up", "GC/s")
	for _, c := range r.Creates {
		s := c.Server
		fmt.Fprintf(w, "%5d %8.2f/%-8.2f %8.2f/%-8.2f %8.2f/%-8.2f %6.0f ev %7.0f ev %11.0f %11.1f %8.1fs %9.1f\n", c.Concurrency,
			s.HTTPCreateMs.P50, s.HTTPCreateMs.P99, s.AppendDurationMs.P50, s.AppendDurationMs.P99, s.StreamLockHoldMs.P50, s.StreamLockHoldMs.P99,
			s.MaxRelayLagEvents, s.MaxProjectorLag, s.ProjectorBatchSize.Mean, s.GroupCommitSize.Mean, c.CatchUpSeconds, s.GCCycles/max(c.Seconds, 1e-9))
	}
	fmt.Fprintf(w, "(group mean = commands per group commit; replays = commands run again alone: %s)\n", groupReplays(r.Creates))

	fmt.Fprintf(w, "\nPostgres during each create phase (bench database: pg_stat_database deltas, pg_stat_activity every 50 ms)\n")
	for _, c := range r.Creates {
		pg := c.Postgres
		fmt.Fprintf(w, "  c=%-3d %.1f commits/create, %.0f tuples returned/create, %.1f non-idle backends on average%s\n", c.Concurrency,
			pg.CommitsPerCreate, pg.RowsReadPerCreate, pg.Activity.AvgNonIdle, errSuffix(pg.Error))
		fmt.Fprintf(w, "        waits: %s\n", shares(pg.Activity.WaitEvents, 5))
		for _, st := range pg.Activity.Statements[:min(len(pg.Activity.Statements), 4)] {
			fmt.Fprintf(w, "        %4.1f%%  %s\n", st.Share*100, st.Key)
		}
	}

	fmt.Fprintf(w, "\nCPU split during the measured window (%% of one core; %d cores = %d%%)\n", r.Host.CPUs, 100*r.Host.CPUs)
	fmt.Fprintf(w, "%-16s %8s %9s %11s %9s %9s %8s %8s %9s\n", "phase", "dev", "postgres", "clickhouse", "bench", "pgbench", "others", "kthreads", "machine")
	row := func(name string, s cpuSplit) {
		fmt.Fprintf(w, "%-16s %7.0f%% %8.0f%% %10.0f%% %8.0f%% %8.0f%% %7.0f%% %7.0f%% %8.0f%%\n", name, s.DevPct, s.PostgresPct, s.ClickHousePct,
			s.LoadGenPct, s.BenchChildrenPct, s.OtherPct, s.KernelThreadsPct, s.MachineBusyPct)
	}
	r.cpuRows(row)
	for _, c := range r.Creates {
		if len(c.CPU.OtherTop) > 0 {
			fmt.Fprintf(w, "  other processes during creates c=%d: %s\n", c.Concurrency, strings.Join(c.CPU.OtherTop, ", "))
		}
	}
	fmt.Fprintf(w, "CPU per create (ms; bench = the load generator; the mix per request of any kind, the batch per item created):\n")
	r.cpuPerOpRows(func(name string, x cpuPerOp) {
		fmt.Fprintf(w, "  %-26s dev %.2f, postgres %.2f, clickhouse %.2f, bench %.2f; whole machine %.2f\n", name, x.Dev, x.Postgres, x.ClickHouse, x.Bench, x.Machine)
	})
	fmt.Fprintf(w, "Postgres CPU per pgbench transaction (ms):")
	for _, p := range r.Pgbench {
		fmt.Fprintf(w, "  c=%d %.3f;", p.Concurrency, p.PostgresCPUMsPerTx)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\nBaselines\n")
	for _, p := range r.Pgbench {
		fmt.Fprintf(w, "  pgbench c=%-3d -j %d: %8.0f tps, p50 %.2f ms, p99 %.2f ms, failed %d%s\n", p.Concurrency, p.Jobs, p.TPS,
			p.LatencyMs.P50, p.LatencyMs.P99, p.Failed, errSuffix(p.Error))
	}
	for _, e := range r.EmptyHandler {
		fmt.Fprintf(w, "  empty handler c=%-3d: %8.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d\n", e.Concurrency, e.PerSecond,
			e.LatencyMs.P50, e.LatencyMs.P99, e.Errors)
	}

	fmt.Fprintf(w, "\nProjection lag (201 → first probe that saw the row in ClickHouse tickets; one probe query per %.0f ms at most, so a figure is up to %.0f ms late)\n", r.Config.LagPollMs, r.Config.LagPollMs)
	for _, l := range r.ProjectionLag {
		fmt.Fprintf(w, "  %-22s samples %4d, visible %4d, missed %d: p50 %7.0f ms, p99 %7.0f ms, max %7.0f ms (creates %.0f/s; probe %.1f queries/s, mean %.1f ms)\n",
			l.Phase, l.Samples, l.Visible, l.Missed, l.LagMs.P50, l.LagMs.P99, l.LagMs.Max, l.CreatesPerSec, l.ProbeQPS, l.MeanQueryMs)
	}

	ip := r.InProcess
	fmt.Fprintf(w, "\nIn-process costs (one goroutine, this process): decode body %.0f µs, SanitizeHTML %.0f µs, PlainText %.0f µs per %d-byte message\n",
		ip.DecodeBodyUs, ip.SanitizeHTMLUs, ip.PlainTextUs, ip.MessageBodyBytes)

	r.printTraffic(w)
	r.printAutomations(w)
	r.printWebhooks(w)
	r.printReadSide(w)
	r.printMail(w)

	m := r.Memory
	fmt.Fprintf(w, "\nMemory of the dev process: start %s, peak during load %s, after load %s, at end %s, VmHWM %s\n",
		mb(m.StartRSSKB), mb(m.MaxRSSKB), mb(m.AfterLoadRSSKB), mb(m.EndRSSKB), mb(m.EndHWMKB))
	fmt.Fprintf(w, "Read model: %d tickets created, %d projected\n", r.ReadModel.Created, r.ReadModel.Projected)
	fmt.Fprintf(w, "Shutdown: SIGTERM → exit %d after %.2f s (clean: %v)\n", r.Shutdown.ExitCode, r.Shutdown.Seconds, r.Shutdown.Clean)

	fmt.Fprintf(w, "\nTargets (reported, never fatal)\n")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "  %-4s %-44s %10.1f %-9s target %s\n", passMiss(t.Pass), t.Name, t.Measured, t.Unit, t.Target)
		if t.Detail != "" {
			fmt.Fprintf(w, "       %s\n", t.Detail)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w)
}

func shares(cs []countShare, n int) string {
	var parts []string
	for _, c := range cs[:min(len(cs), n)] {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", c.Key, c.Share*100))
	}
	return strings.Join(parts, ", ")
}

// groupReplays lists each create level's group commit replays.
func groupReplays(creates []createPhase) string {
	var parts []string
	for _, c := range creates {
		parts = append(parts, fmt.Sprintf("c=%d %.0f", c.Concurrency, c.Server.GroupCommitReplays))
	}
	return strings.Join(parts, ", ")
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

func (r *results) markdown(w io.Writer) {
	fmt.Fprintf(w, "# HelpDeskFlow end-to-end benchmark\n\n%s. Started %s.\n\n", r.header(), r.StartedAt)
	if r.Error != "" {
		fmt.Fprintf(w, "**The run failed:** `%s`\n\n", r.Error)
	}
	fmt.Fprintf(w, "## Targets\n\n| | target | measured | detail |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "| %s %s | %s %s | %.1f %s | %s |\n", passMiss(t.Pass), t.Name, t.Target, t.Unit, t.Measured, t.Unit, t.Detail)
	}
	fmt.Fprintf(w, "\n## Ticket creates (POST /v1/tickets) and baselines\n\n")
	fmt.Fprintf(w, "| c | creates/s | sustained/s | p50 ms | p99 ms | errors | pgbench tps | creates ÷ pgbench | empty handler req/s | creates ÷ empty |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for i, c := range r.Creates {
		rt := r.Ratios[i]
		fmt.Fprintf(w, "| %d | %.0f | %.0f | %.2f | %.2f | %d | %.0f | %.3f | %.0f | %.3f |\n", c.Concurrency, c.PerSecond, c.SustainedPerSec, c.LatencyMs.P50,
			c.LatencyMs.P99, c.Errors, rt.PgbenchTPS, rt.CreatesOverPgbench, rt.EmptyPerSec, rt.CreatesOverEmptyReq)
	}
	fmt.Fprintf(w, "\nSustained = creates ÷ (window + time from the end of the load until the projection had caught up).\n")
	fmt.Fprintf(w, "\npgbench: `%s` (autocommit: one INSERT + COMMIT per transaction), `-j 2` (1 at c=1).\n", r.Config.PgbenchScript)
	for _, p := range r.Pgbench {
		fmt.Fprintf(w, "- c=%d: %.0f tps, p50 %.2f ms, p99 %.2f ms%s\n", p.Concurrency, p.TPS, p.LatencyMs.P50, p.LatencyMs.P99, errSuffix(p.Error))
	}
	fmt.Fprintf(w, "\nEmpty handler (in the bench process, shares its CPU with the load generator):\n")
	for _, e := range r.EmptyHandler {
		fmt.Fprintf(w, "- c=%d: %.0f req/s, p50 %.2f ms, p99 %.2f ms\n", e.Concurrency, e.PerSecond, e.LatencyMs.P50, e.LatencyMs.P99)
	}

	fmt.Fprintf(w, "\n## Server side during the create phases (`/metrics` deltas)\n\n")
	fmt.Fprintf(w, "| c | http create p50/p99 ms | append p50/p99 ms | stream lock hold p50/p99 ms | max relay lag (events / s) | max projector lag | projector batch mean | group commit mean | projector insert mean ms | catch-up s | dev CPU s | GC cycles |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Creates {
		s := c.Server
		fmt.Fprintf(w, "| %d | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.0f / %.2f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f |\n", c.Concurrency,
			s.HTTPCreateMs.P50, s.HTTPCreateMs.P99, s.AppendDurationMs.P50, s.AppendDurationMs.P99, s.StreamLockHoldMs.P50, s.StreamLockHoldMs.P99,
			s.MaxRelayLagEvents, s.MaxRelayLagSeconds, s.MaxProjectorLag, s.ProjectorBatchSize.Mean, s.GroupCommitSize.Mean, s.ProjectorInsertMs.Mean,
			c.CatchUpSeconds, s.ProcessCPUSeconds, s.GCCycles)
	}
	fmt.Fprintf(w, "\n## Postgres during the create phases\n\n`pg_stat_database` deltas of the bench database over the measured window (backends flush their counters about once a second, so ±1 s) and `pg_stat_activity` sampled every 50 ms (share of non-idle backend observations).\n\n")
	for _, c := range r.Creates {
		pg := c.Postgres
		fmt.Fprintf(w, "- **c=%d**: %.1f commits per create, %.0f tuples returned per create, %.1f non-idle backends on average. Waits: %s.\n",
			c.Concurrency, pg.CommitsPerCreate, pg.RowsReadPerCreate, pg.Activity.AvgNonIdle, shares(pg.Activity.WaitEvents, 6))
		for _, st := range pg.Activity.Statements[:min(len(pg.Activity.Statements), 5)] {
			fmt.Fprintf(w, "  - %.1f%% `%s`\n", st.Share*100, strings.ReplaceAll(st.Key, "`", "'"))
		}
	}
	if len(r.PostgresTables) > 0 {
		fmt.Fprintf(w, "\nTables at the end (`pg_stat_user_tables`):\n\n| table | seq_scan | seq_tup_read | idx_scan | idx_tup_fetch | n_tup_ins | n_tup_upd | n_live_tup | n_dead_tup |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, t := range r.PostgresTables {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t["table"], t["seq_scan"], t["seq_tup_read"], t["idx_scan"],
				t["idx_tup_fetch"], t["n_tup_ins"], t["n_tup_upd"], t["n_live_tup"], t["n_dead_tup"])
		}
	}
	fmt.Fprintf(w, "\n## CPU split (%% of one core, %d cores)\n\n`postgres` is the whole server (every database); `others` are processes outside the benchmark, `kthreads` kernel threads.\n\n| phase | dev | postgres | clickhouse | bench | pgbench | others | kthreads | machine busy | top other processes |\n|---|---|---|---|---|---|---|---|---|---|\n", r.Host.CPUs)
	row := func(name string, s cpuSplit) {
		fmt.Fprintf(w, "| %s | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %s |\n", name, s.DevPct, s.PostgresPct, s.ClickHousePct,
			s.LoadGenPct, s.BenchChildrenPct, s.OtherPct, s.KernelThreadsPct, s.MachineBusyPct, strings.Join(s.OtherTop, ", "))
	}
	r.cpuRows(row)

	fmt.Fprintf(w, "\nCPU time per create (ms; bench = the load generator, in the bench process; machine = all %d cores' busy time; the mix per request of any kind, the batch per item created):\n\n| phase | dev | postgres | clickhouse | bench | machine |\n|---|---|---|---|---|---|\n", r.Host.CPUs)
	r.cpuPerOpRows(func(name string, x cpuPerOp) {
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", name, x.Dev, x.Postgres, x.ClickHouse, x.Bench, x.Machine)
	})
	fmt.Fprintf(w, "\nPostgres CPU per pgbench transaction (ms):")
	for _, p := range r.Pgbench {
		fmt.Fprintf(w, " c=%d %.3f;", p.Concurrency, p.PostgresCPUMsPerTx)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\n## Projection lag (201 → first probe that saw the row in ClickHouse `tickets`; one probe query per %.0f ms at most, so a figure is up to %.0f ms late)\n\n| phase | samples | visible | missed | p50 ms | p99 ms | max ms | probe queries/s |\n|---|---|---|---|---|---|---|---|\n", r.Config.LagPollMs, r.Config.LagPollMs)
	for _, l := range r.ProjectionLag {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %.0f | %.0f | %.0f | %.1f |\n", l.Phase, l.Samples, l.Visible, l.Missed, l.LagMs.P50, l.LagMs.P99, l.LagMs.Max, l.ProbeQPS)
	}
	ip := r.InProcess
	fmt.Fprintf(w, "\nIn-process costs (one goroutine, in the bench process): decode body %.0f µs, `commands.SanitizeHTML` %.0f µs, `commands.PlainText` %.0f µs per %d-byte message.\n",
		ip.DecodeBodyUs, ip.SanitizeHTMLUs, ip.PlainTextUs, ip.MessageBodyBytes)
	r.markdownTraffic(w)
	r.markdownAutomations(w)
	r.markdownWebhooks(w)
	r.markdownReadSide(w)
	r.markdownMail(w)
	r.markdownRebuild(w)
	r.markdownAnalytics(w)
	r.markdownCapacity(w)
	m := r.Memory
	fmt.Fprintf(w, "\n## Memory of the dev process\n\nstart %s · peak during load %s · after load %s · at end %s · VmHWM %s\n",
		mb(m.StartRSSKB), mb(m.MaxRSSKB), mb(m.AfterLoadRSSKB), mb(m.EndRSSKB), mb(m.EndHWMKB))
	fmt.Fprintf(w, "\nRead model: %d tickets created, %d projected. Shutdown: SIGTERM → exit %d after %.2f s.\n",
		r.ReadModel.Created, r.ReadModel.Projected, r.Shutdown.ExitCode, r.Shutdown.Seconds)
	for _, c := range r.Creates {
		if len(c.Top) > 0 {
			fmt.Fprintf(w, "\n### top during creates c=%d\n\n```\n%s\n```\n", c.Concurrency, strings.Join(c.Top, "\n"))
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

// cpuRows hands row the CPU split of every measured level, in the order
// both CPU tables print them.
func (r *results) cpuRows(row func(name string, s cpuSplit)) {
	for _, c := range r.Creates {
		row(fmt.Sprintf("creates c=%d", c.Concurrency), c.CPU)
	}
	r.trafficCPU(func(name string, s cpuSplit, _ cpuPerOp) { row(name, s) })
	for _, p := range r.Pgbench {
		row(fmt.Sprintf("pgbench c=%d", p.Concurrency), p.CPU)
	}
	for _, e := range r.EmptyHandler {
		row(fmt.Sprintf("empty c=%d", e.Concurrency), e.CPU)
	}
	r.automationCPURows(row)
	r.webhookCPURows(row)
	r.mailCPURows(row)
	r.readSideCPURows(row)
}

// cpuPerOpRows hands line the CPU time per create of every create level,
// then of the mix, paced and batch phases, in the order both tables print
// them.
func (r *results) cpuPerOpRows(line func(name string, x cpuPerOp)) {
	for _, c := range r.Creates {
		line(fmt.Sprintf("creates c=%d", c.Concurrency), c.CPUPerCreateMs)
	}
	r.trafficCPU(func(name string, _ cpuSplit, x cpuPerOp) { line(name, x) })
}

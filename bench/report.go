package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Targets from the issue. Missing one is reported, never fatal.
const (
	targetCreatesPerSec = 2500 // at c=64
	targetCreatesC      = 64
	targetP99Ms         = 50 // at c=16
	targetP99C          = 16
	targetLagP99Ms      = 2000
	targetReadsPerSec   = 10000 // composite reads of a 50-message ticket, at c=64
	targetReadsC        = 64
	targetListP99Ms     = 200 // list queries over a million projected tickets
)

type results struct {
	StartedAt         string              `json:"started_at"`
	FinishedAt        string              `json:"finished_at"`
	Host              hostInfo            `json:"host"`
	Config            configInfo          `json:"config"`
	Databases         databaseNames       `json:"databases"`
	Postgres          map[string]string   `json:"postgres_settings"`
	ClickHouseVersion string              `json:"clickhouse_version"`
	RequestBodyBytes  int                 `json:"request_body_bytes_avg"`
	InProcess         inProcessCosts      `json:"in_process_costs"`
	Creates           []createPhase       `json:"creates"`
	Pgbench           []pgbenchPhase      `json:"pgbench"`
	EmptyHandler      []emptyPhase        `json:"empty_handler"`
	Ratios            []ratio             `json:"ratios"`
	Automations       *automations        `json:"automations,omitempty"`
	Webhooks          *webhooksResult     `json:"webhooks,omitempty"`
	Mail              *mailResult         `json:"mail,omitempty"`
	ProjectionLag     []lagResult         `json:"projection_lag"`
	CompositeRead     *compositeRead      `json:"composite_read,omitempty"`
	ListQuery         *listQuery          `json:"list_query,omitempty"`
	Memory            memoryResult        `json:"memory"`
	ReadModel         readModelCheck      `json:"read_model"`
	PostgresTables    []map[string]string `json:"postgres_tables_at_end"`
	Targets           []targetResult      `json:"targets"`
	Shutdown          shutdownResult      `json:"shutdown"`
	Notes             []string            `json:"notes,omitempty"`
	Error             string              `json:"error,omitempty"`
}

type hostInfo struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel"`
	CPUModel  string `json:"cpu_model"`
}

type configInfo struct {
	DurationSeconds      float64  `json:"duration_seconds"`
	WarmupSeconds        float64  `json:"warmup_seconds"`
	Concurrency          []int    `json:"concurrency"`
	Phases               []string `json:"phases"`
	ListConcurrency      []int    `json:"list_concurrency"`
	ListTickets          int      `json:"list_tickets"`
	LagSamples           int      `json:"lag_samples"`
	LagRate              float64  `json:"lag_rate"`
	LagConcurrency       int      `json:"lag_concurrency"`
	DistinctCustomers    int      `json:"distinct_customers"`
	PgbenchScript        string   `json:"pgbench_script"`
	LagPollMs            float64  `json:"lag_poll_ms"`
	ProjectionTable      string   `json:"projection_table"`
	SourceTreeSHA256     string   `json:"source_tree_sha256"`
	LoadGeneratorClosed  bool     `json:"load_generator_closed_loop"`
	EmptyHandlerInBench  bool     `json:"empty_handler_in_bench_process"`
	AllRolesInOneProcess bool     `json:"all_roles_in_one_process"`
}

type databaseNames struct {
	Postgres   string `json:"postgres"`
	ClickHouse string `json:"clickhouse"`
}

type createPhase struct {
	loadStats
	Server                 serverStats `json:"server"`
	Postgres               pgPhase     `json:"postgres"`
	CPU                    cpuSplit    `json:"cpu"`
	MaxRSSKB               uint64      `json:"max_rss_kb"`
	RSSAfterKB             uint64      `json:"rss_after_kb"`
	CatchUpSeconds         float64     `json:"projection_catch_up_seconds"`
	DispatchCatchUpSeconds float64     `json:"relay_dispatch_catch_up_seconds_after_projection"`
	ProjectedTickets       uint64      `json:"projected_tickets_after"`
	Top                    []string    `json:"top,omitempty"`
	// CPUPerCreateMs is CPU time per create, by process: the cost that
	// bounds throughput once the machine is saturated.
	CPUPerCreateMs cpuPerOp `json:"cpu_ms_per_create"`
}

type cpuPerOp struct {
	Dev        float64 `json:"dev_process"`
	Postgres   float64 `json:"postgres"`
	ClickHouse float64 `json:"clickhouse"`
	Bench      float64 `json:"bench_process"`
	Machine    float64 `json:"machine"`
}

type pgbenchPhase struct {
	pgbenchResult
	CPU                cpuSplit `json:"cpu"`
	PostgresCPUMsPerTx float64  `json:"postgres_cpu_ms_per_tx"`
}

type emptyPhase struct {
	loadStats
	CPU cpuSplit `json:"cpu"`
}

type ratio struct {
	Concurrency         int     `json:"concurrency"`
	CreatesPerSec       float64 `json:"creates_per_second"`
	PgbenchTPS          float64 `json:"pgbench_tps"`
	EmptyPerSec         float64 `json:"empty_handler_per_second"`
	CreatesOverPgbench  float64 `json:"creates_over_pgbench"`
	CreatesOverEmptyReq float64 `json:"creates_over_empty_handler"`
}

type memoryResult struct {
	StartRSSKB     uint64 `json:"start_rss_kb"`
	MaxRSSKB       uint64 `json:"max_rss_during_load_kb"`
	AfterLoadRSSKB uint64 `json:"after_load_rss_kb"`
	AfterLoadHWMKB uint64 `json:"after_load_hwm_kb"`
	EndRSSKB       uint64 `json:"end_rss_kb"`
	EndHWMKB       uint64 `json:"end_hwm_kb"`
}

type readModelCheck struct {
	Created   uint64 `json:"created"`
	Projected uint64 `json:"projected"`
}

type targetResult struct {
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Measured float64 `json:"measured"`
	Unit     string  `json:"unit"`
	Pass     bool    `json:"pass"`
}

func newResults(o options) *results {
	r := &results{
		StartedAt: time.Now().UTC().Format(time.RFC3339),
		Host:      hostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Kernel: kernel(), CPUModel: cpuModel()},
		Config: configInfo{
			DurationSeconds: o.duration.Seconds(), WarmupSeconds: o.warmup.Seconds(), Concurrency: o.concurrency,
			Phases: o.phases, ListConcurrency: o.listConcurrency, ListTickets: o.listTickets,
			LagSamples: o.lagSamples, LagRate: o.lagRate, LagConcurrency: o.lagConcurrency, DistinctCustomers: customers,
			PgbenchScript: strings.TrimSpace(pgbenchScript), LagPollMs: float64(lagPollInterval.Milliseconds()),
			ProjectionTable: "tickets", LoadGeneratorClosed: true, EmptyHandlerInBench: true, AllRolesInOneProcess: true,
		},
		Shutdown: shutdownResult{ExitCode: -1},
	}
	return r
}

func (r *results) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logf("note: %s", msg)
	r.Notes = append(r.Notes, msg)
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// finish computes the ratios, the memory peaks and the targets.
func (r *results) finish() {
	r.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	r.Ratios = nil
	for _, c := range r.Creates {
		rt := ratio{Concurrency: c.Concurrency, CreatesPerSec: round1(c.PerSecond)}
		for _, p := range r.Pgbench {
			if p.Concurrency == c.Concurrency && p.TPS > 0 {
				rt.PgbenchTPS, rt.CreatesOverPgbench = round1(p.TPS), round3(c.PerSecond/p.TPS)
			}
		}
		for _, e := range r.EmptyHandler {
			if e.Concurrency == c.Concurrency && e.PerSecond > 0 {
				rt.EmptyPerSec, rt.CreatesOverEmptyReq = round1(e.PerSecond), round3(c.PerSecond/e.PerSecond)
			}
		}
		r.Ratios = append(r.Ratios, rt)
		r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, c.MaxRSSKB)
	}
	perOp := func(pct, rate float64) float64 {
		if rate <= 0 {
			return 0
		}
		return round3(pct / 100 * 1000 / rate)
	}
	for i := range r.Creates {
		c := &r.Creates[i]
		c.CPUPerCreateMs = cpuPerOp{Dev: perOp(c.CPU.DevPct, c.PerSecond), Postgres: perOp(c.CPU.PostgresPct, c.PerSecond),
			ClickHouse: perOp(c.CPU.ClickHousePct, c.PerSecond), Bench: perOp(c.CPU.LoadGenPct, c.PerSecond),
			Machine: perOp(c.CPU.MachineBusyPct*float64(max(c.CPU.Cores, 1)), c.PerSecond)}
	}
	for i := range r.Pgbench {
		r.Pgbench[i].PostgresCPUMsPerTx = perOp(r.Pgbench[i].CPU.PostgresPct, r.Pgbench[i].TPS)
	}
	cpuPer := func(s cpuSplit, rate float64) cpuPerOp {
		return cpuPerOp{Dev: perOp(s.DevPct, rate), Postgres: perOp(s.PostgresPct, rate), ClickHouse: perOp(s.ClickHousePct, rate),
			Bench: perOp(s.LoadGenPct, rate), Machine: perOp(s.MachineBusyPct*float64(max(s.Cores, 1)), rate)}
	}
	if cr := r.CompositeRead; cr != nil {
		for i := range cr.Phases {
			p := &cr.Phases[i]
			p.CPUPerReadMs = cpuPer(p.CPU, p.PerSecond)
			p.EmptyPerSec, p.ReadsOverEmpty = 0, 0
			for _, e := range r.EmptyHandler {
				if e.Concurrency == p.Concurrency && e.PerSecond > 0 {
					p.EmptyPerSec, p.ReadsOverEmpty = round1(e.PerSecond), round3(p.PerSecond/e.PerSecond)
				}
			}
			r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, p.MaxRSSKB)
		}
	}
	if lq := r.ListQuery; lq != nil {
		for i := range lq.Phases {
			p := &lq.Phases[i]
			p.CPUPerQueryMs = cpuPer(p.CPU, p.PerSecond)
			r.Memory.MaxRSSKB = max(r.Memory.MaxRSSKB, p.MaxRSSKB)
		}
	}

	r.Targets = nil
	add := func(name, target, unit string, found bool, v float64, pass bool) {
		t := targetResult{Name: name, Target: target, Unit: unit, Measured: round1(v), Pass: found && pass}
		if !found {
			t.Target += " (not measured)"
		}
		r.Targets = append(r.Targets, t)
	}
	var c64, c16 *createPhase
	for i := range r.Creates {
		switch r.Creates[i].Concurrency {
		case targetCreatesC:
			c64 = &r.Creates[i]
		case targetP99C:
			c16 = &r.Creates[i]
		}
	}
	if c64 != nil {
		add("creates/s at c=64", fmt.Sprintf(">= %d", targetCreatesPerSec), "creates/s", true, c64.PerSecond, c64.PerSecond >= targetCreatesPerSec)
	} else {
		add("creates/s at c=64", fmt.Sprintf(">= %d", targetCreatesPerSec), "creates/s", false, 0, false)
	}
	if c16 != nil {
		add("create p99 at c=16", fmt.Sprintf("< %d", targetP99Ms), "ms", true, c16.LatencyMs.P99, c16.LatencyMs.P99 < targetP99Ms)
	} else {
		add("create p99 at c=16", fmt.Sprintf("< %d", targetP99Ms), "ms", false, 0, false)
	}
	for _, l := range r.ProjectionLag {
		ok := l.Visible > 0 && l.Missed == 0
		add("projection lag p99 ("+l.Phase+")", fmt.Sprintf("< %d", targetLagP99Ms), "ms", l.Visible > 0, l.LagMs.P99, ok && l.LagMs.P99 < targetLagP99Ms)
	}
	if slices.Contains(r.Config.Phases, phaseAutomations) {
		r.automationTarget(add)
	}
	if slices.Contains(r.Config.Phases, phaseWebhooks) {
		r.webhookTarget(add)
	}
	if slices.Contains(r.Config.Phases, phaseReads) {
		var found *readPhase
		if r.CompositeRead != nil {
			for i := range r.CompositeRead.Phases {
				if r.CompositeRead.Phases[i].Concurrency == targetReadsC {
					found = &r.CompositeRead.Phases[i]
				}
			}
		}
		name, target := fmt.Sprintf("composite reads/s at c=%d (50 messages)", targetReadsC), fmt.Sprintf(">= %d", targetReadsPerSec)
		if found != nil {
			if found.Errors > 0 {
				name = fmt.Sprintf("composite reads/s at c=%d (50 messages; %d failed)", targetReadsC, found.Errors)
			}
			add(name, target, "reads/s", true, found.PerSecond, found.Errors == 0 && found.PerSecond >= targetReadsPerSec)
		} else {
			add(name, target, "reads/s", false, 0, false)
		}
	}
	if slices.Contains(r.Config.Phases, phaseList) {
		byC := map[int]*listPhase{}
		if r.ListQuery != nil {
			for i := range r.ListQuery.Phases {
				byC[r.ListQuery.Phases[i].Concurrency] = &r.ListQuery.Phases[i]
			}
		}
		for _, c := range r.Config.ListConcurrency {
			name := fmt.Sprintf("list p99 at c=%d (%s tickets)", c, thousands(r.Config.ListTickets))
			if p := byC[c]; p != nil && p.Requests+p.Errors > 0 {
				if p.Errors > 0 {
					name = fmt.Sprintf("list p99 at c=%d (%s tickets; %d of %d failed)", c, thousands(r.Config.ListTickets), p.Errors, p.Errors+p.Requests)
				}
				add(name, fmt.Sprintf("< %d", targetListP99Ms), "ms", true, p.LatencyMs.P99, p.Errors == 0 && p.LatencyMs.P99 < targetListP99Ms)
			} else {
				add(name, fmt.Sprintf("< %d", targetListP99Ms), "ms", false, 0, false)
			}
		}
	}
}

// thousands writes n with comma separators: 1000000 → "1,000,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func round1(v float64) float64 { return round3(v*100) / 100 }

func (r *results) write(dir string) error {
	r.finish()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	r.markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s", filepath.Join(dir, "results.json"), filepath.Join(dir, "summary.md"))
	return nil
}

func mb(kb uint64) string { return fmt.Sprintf("%.0f MiB", float64(kb)/1024) }

func passMiss(ok bool) string {
	if ok {
		return "pass"
	}
	return "MISS"
}

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
	fmt.Fprintf(w, "%5s %11s %9s %9s %9s %7s | %11s %7s | %11s %7s\n", "c", "creates/s", "p50 ms", "p99 ms", "max ms", "errors",
		"pgbench tps", "ratio", "empty req/s", "ratio")
	for i, c := range r.Creates {
		rt := r.Ratios[i]
		fmt.Fprintf(w, "%5d %11.0f %9.2f %9.2f %9.1f %7d | %11.0f %7.3f | %11.0f %7.3f\n", c.Concurrency, c.PerSecond,
			c.LatencyMs.P50, c.LatencyMs.P99, c.LatencyMs.Max, c.Errors, rt.PgbenchTPS, rt.CreatesOverPgbench, rt.EmptyPerSec, rt.CreatesOverEmptyReq)
	}

	fmt.Fprintf(w, "\nServer side during each create phase (/metrics deltas; bucket-interpolated percentiles)\n")
	fmt.Fprintf(w, "%5s %17s %17s %17s %10s %10s %11s %9s %9s\n", "c", "http p50/p99 ms", "append p50/p99", "lock p50/p99",
		"relay lag", "proj lag", "batch mean", "catch-up", "GC/s")
	for _, c := range r.Creates {
		s := c.Server
		fmt.Fprintf(w, "%5d %8.2f/%-8.2f %8.2f/%-8.2f %8.2f/%-8.2f %6.0f ev %7.0f ev %11.0f %8.1fs %9.1f\n", c.Concurrency,
			s.HTTPCreateMs.P50, s.HTTPCreateMs.P99, s.AppendDurationMs.P50, s.AppendDurationMs.P99, s.StreamLockHoldMs.P50, s.StreamLockHoldMs.P99,
			s.MaxRelayLagEvents, s.MaxProjectorLag, s.ProjectorBatchSize.Mean, c.CatchUpSeconds, s.GCCycles/max(c.Seconds, 1e-9))
	}

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
	for _, c := range r.Creates {
		row(fmt.Sprintf("creates c=%d", c.Concurrency), c.CPU)
	}
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
	for _, c := range r.Creates {
		if len(c.CPU.OtherTop) > 0 {
			fmt.Fprintf(w, "  other processes during creates c=%d: %s\n", c.Concurrency, strings.Join(c.CPU.OtherTop, ", "))
		}
	}
	fmt.Fprintf(w, "CPU per create (ms):\n")
	for _, c := range r.Creates {
		x := c.CPUPerCreateMs
		fmt.Fprintf(w, "  c=%-3d dev %.2f, postgres %.2f, clickhouse %.2f, bench %.2f; whole machine %.2f\n", c.Concurrency, x.Dev, x.Postgres, x.ClickHouse, x.Bench, x.Machine)
	}
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

	fmt.Fprintf(w, "\nProjection lag (201 → row visible in ClickHouse tickets; polled every %.0f ms)\n", r.Config.LagPollMs)
	for _, l := range r.ProjectionLag {
		fmt.Fprintf(w, "  %-22s samples %4d, visible %4d, missed %d: p50 %7.0f ms, p99 %7.0f ms, max %7.0f ms (creates %.0f/s)\n",
			l.Phase, l.Samples, l.Visible, l.Missed, l.LagMs.P50, l.LagMs.P99, l.LagMs.Max, l.CreatesPerSec)
	}

	ip := r.InProcess
	fmt.Fprintf(w, "\nIn-process costs (one goroutine, this process): decode body %.0f µs, SanitizeHTML %.0f µs, PlainText %.0f µs per %d-byte message\n",
		ip.DecodeBodyUs, ip.SanitizeHTMLUs, ip.PlainTextUs, ip.MessageBodyBytes)

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
	fmt.Fprintf(w, "## Targets\n\n| | target | measured |\n|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "| %s %s | %s %s | %.1f %s |\n", passMiss(t.Pass), t.Name, t.Target, t.Unit, t.Measured, t.Unit)
	}
	fmt.Fprintf(w, "\n## Ticket creates (POST /v1/tickets) and baselines\n\n")
	fmt.Fprintf(w, "| c | creates/s | p50 ms | p99 ms | errors | pgbench tps | creates ÷ pgbench | empty handler req/s | creates ÷ empty |\n|---|---|---|---|---|---|---|---|---|\n")
	for i, c := range r.Creates {
		rt := r.Ratios[i]
		fmt.Fprintf(w, "| %d | %.0f | %.2f | %.2f | %d | %.0f | %.3f | %.0f | %.3f |\n", c.Concurrency, c.PerSecond, c.LatencyMs.P50,
			c.LatencyMs.P99, c.Errors, rt.PgbenchTPS, rt.CreatesOverPgbench, rt.EmptyPerSec, rt.CreatesOverEmptyReq)
	}
	fmt.Fprintf(w, "\npgbench: `%s` (autocommit: one INSERT + COMMIT per transaction), `-j 2` (1 at c=1).\n", r.Config.PgbenchScript)
	for _, p := range r.Pgbench {
		fmt.Fprintf(w, "- c=%d: %.0f tps, p50 %.2f ms, p99 %.2f ms%s\n", p.Concurrency, p.TPS, p.LatencyMs.P50, p.LatencyMs.P99, errSuffix(p.Error))
	}
	fmt.Fprintf(w, "\nEmpty handler (in the bench process, shares its CPU with the load generator):\n")
	for _, e := range r.EmptyHandler {
		fmt.Fprintf(w, "- c=%d: %.0f req/s, p50 %.2f ms, p99 %.2f ms\n", e.Concurrency, e.PerSecond, e.LatencyMs.P50, e.LatencyMs.P99)
	}

	fmt.Fprintf(w, "\n## Server side during the create phases (`/metrics` deltas)\n\n")
	fmt.Fprintf(w, "| c | http create p50/p99 ms | append p50/p99 ms | stream lock hold p50/p99 ms | max relay lag (events / s) | max projector lag | projector batch mean | projector insert mean ms | catch-up s | dev CPU s | GC cycles |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Creates {
		s := c.Server
		fmt.Fprintf(w, "| %d | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.0f / %.2f | %.0f | %.0f | %.1f | %.1f | %.1f | %.0f |\n", c.Concurrency,
			s.HTTPCreateMs.P50, s.HTTPCreateMs.P99, s.AppendDurationMs.P50, s.AppendDurationMs.P99, s.StreamLockHoldMs.P50, s.StreamLockHoldMs.P99,
			s.MaxRelayLagEvents, s.MaxRelayLagSeconds, s.MaxProjectorLag, s.ProjectorBatchSize.Mean, s.ProjectorInsertMs.Mean,
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
	for _, c := range r.Creates {
		row(fmt.Sprintf("creates c=%d", c.Concurrency), c.CPU)
	}
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

	fmt.Fprintf(w, "\nCPU time per create (ms; machine = all %d cores' busy time):\n\n| c | dev | postgres | clickhouse | bench | machine |\n|---|---|---|---|---|---|\n", r.Host.CPUs)
	for _, c := range r.Creates {
		x := c.CPUPerCreateMs
		fmt.Fprintf(w, "| %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c.Concurrency, x.Dev, x.Postgres, x.ClickHouse, x.Bench, x.Machine)
	}
	fmt.Fprintf(w, "\nPostgres CPU per pgbench transaction (ms):")
	for _, p := range r.Pgbench {
		fmt.Fprintf(w, " c=%d %.3f;", p.Concurrency, p.PostgresCPUMsPerTx)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\n## Projection lag (201 → visible in ClickHouse `tickets`, polled every %.0f ms)\n\n| phase | samples | visible | missed | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n", r.Config.LagPollMs)
	for _, l := range r.ProjectionLag {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %.0f | %.0f | %.0f |\n", l.Phase, l.Samples, l.Visible, l.Missed, l.LagMs.P50, l.LagMs.P99, l.LagMs.Max)
	}
	ip := r.InProcess
	fmt.Fprintf(w, "\nIn-process costs (one goroutine, in the bench process): decode body %.0f µs, `commands.SanitizeHTML` %.0f µs, `commands.PlainText` %.0f µs per %d-byte message.\n",
		ip.DecodeBodyUs, ip.SanitizeHTMLUs, ip.PlainTextUs, ip.MessageBodyBytes)
	r.markdownAutomations(w)
	r.markdownWebhooks(w)
	r.markdownReadSide(w)
	r.markdownMail(w)
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

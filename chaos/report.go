package chaos

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Report is what a run found, per fault (phase) and overall.
type Report struct {
	Phases []PhaseReport
	// Tables are the ClickHouse tables' rows after OPTIMIZE … FINAL,
	// without and with FINAL.
	Tables []tableCount
	// Restore is the backup drill's outcome.
	Restore RestoreReport
	// SelfExits counts the processes that exited without being killed
	// (the supervisor restarted them).
	SelfExits map[string]int
	// Webhook receiver requests: all, answered 500, hung.
	ReceiverRequests, ReceiverFailed, ReceiverHung int
	// CaughtUp is how long the system took to catch up after the load.
	CaughtUp time.Duration
	// Failures names every loss, duplicate, missing delivery, unexcused
	// API failure and non-linearizable history; empty when the run passed.
	Failures []string
}

// PhaseReport is one fault's figures.
type PhaseReport struct {
	Name            string
	Store           storeTally
	Projection      projectionTally
	Webhooks        webhookTally
	API             availabilityTally
	Recoveries      []recovery
	Linearizability linearizability
}

// RestoreReport is the backup drill: the writes acknowledged before the
// archive's end found in the cluster restored from the base backup and
// the WAL archive.
type RestoreReport struct {
	Events, LiveEvents int
	Acknowledged, Lost int
	Duplicated         int
	// ReadModels says what the ClickHouse rebuild from the restored
	// cluster did.
	ReadModels string
}

// OK reports whether the run passed.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

// check waits for the system to catch up and runs every check.
func (r *run) check(ctx context.Context, h *histories) (*Report, error) {
	rep := &Report{SelfExits: map[string]int{}}
	var err error
	if rep.CaughtUp, err = r.catchUp(ctx); err != nil {
		return nil, err
	}
	events, err := loadEvents(ctx, r.cfg.PostgresURL, r.workspace)
	if err != nil {
		return nil, err
	}
	writes := r.ledger.all()
	store := tallyStore(writes, tokenCounts(events), phaseCount)
	projected, err := projectedEvents(ctx, r.ch, r.workspace)
	if err != nil {
		return nil, err
	}
	projection, phantoms := tallyProjection(events, projected, phaseCount, r.phaseAt)
	if phantoms > 0 {
		r.fail("%d events in ClickHouse are not in the event store", phantoms)
	}
	deliveries, err := loadDeliveries(ctx, r.cfg.PostgresURL, r.webhook)
	if err != nil {
		return nil, err
	}
	received, requests, failed, hung := r.receiver.snapshot()
	rep.ReceiverRequests, rep.ReceiverFailed, rep.ReceiverHung = requests, failed, hung
	subscribed := map[string]bool{}
	for _, t := range subscribedTypes {
		subscribed[t] = true
	}
	hooks := tallyWebhooks(events, subscribed, received, deliveries, phaseCount, r.phaseAt)
	for _, e := range events {
		if d, ok := deliveries[e.ID]; subscribed[e.Type] && received[e.ID] == 0 && !permanentlyFailed(d, ok) {
			r.logf("webhook: event %s (%s, %s) neither received nor permanently failed: delivery %+v", e.ID, e.Type, e.OccurredAt.Format(time.RFC3339Nano), d)
		}
	}
	api := r.avail.tally(phaseCount)
	if rep.Tables, err = optimizeAndCount(ctx, r.ch, r.cfg.ClickHouseDatabase); err != nil {
		return nil, err
	}
	for _, t := range rep.Tables {
		if t.Rows != t.Final {
			r.fail("ClickHouse table %s has %d rows after OPTIMIZE FINAL but %d with FINAL", t.Table, t.Rows, t.Final)
		}
	}
	for _, p := range append(append([]*proc(nil), r.roles...), r.broker) {
		if n := p.selfExits(); n > 0 {
			rep.SelfExits[p.name] = n
		}
	}

	byPhase := h.byPhase()
	for i := range phaseCount {
		p := PhaseReport{Name: phaseNames[i], Store: store[i], Projection: projection[i], Webhooks: hooks[i], API: api[i], Recoveries: r.recoveries[i]}
		p.Linearizability.Result = porcupine.Ok
		if ops := byPhase[i]; len(ops) > 0 {
			lin, err := checkLinearizable(ops, r.cfg.CheckTimeout, r.cfg.WorkDir, fmt.Sprintf("phase%d", i))
			if err != nil {
				return nil, err
			}
			p.Linearizability = lin
		}
		if p.Store.Failed() {
			r.fail("%s: %d acknowledged writes lost, %d stored more than once, %d refused but stored", p.Name, p.Store.Lost, p.Store.Duplicated, p.Store.Phantom)
		}
		if p.Projection.Failed() {
			r.fail("%s: %d events missing from ClickHouse, %d duplicated with FINAL", p.Name, p.Projection.Missing, p.Projection.Duplicated)
		}
		if p.Webhooks.Failed() {
			r.fail("%s: %d subscribed events neither delivered nor recorded as permanently failed", p.Name, p.Webhooks.Missing)
		}
		if p.API.Unexcused > 0 {
			r.fail("%s: %d API requests failed while their process was up", p.Name, p.API.Unexcused)
		}
		switch p.Linearizability.Result {
		case porcupine.Illegal:
			r.fail("%s: the ticket history is not linearizable; see %s", p.Name, p.Linearizability.Visualization)
		case porcupine.Unknown:
			r.fail("%s: the linearizability check did not finish within %s; see %s", p.Name, r.cfg.CheckTimeout, p.Linearizability.Visualization)
		}
		rep.Phases = append(rep.Phases, p)
	}

	rep.Restore, err = r.restoreDrill(ctx, writes, len(events))
	if err != nil {
		return nil, err
	}
	rep.Failures = r.failures
	return rep, nil
}

// restoreDrill closes the WAL archive, restores the base backup taken
// under the load into a new cluster replaying the archive to its end, and
// checks that every write acknowledged before is there exactly once; then
// rebuilds the read models from it (rebuildReadModels).
func (r *run) restoreDrill(ctx context.Context, writes []write, liveEvents int) (RestoreReport, error) {
	rep := RestoreReport{LiveEvents: liveEvents}
	r.logf("restore drill: closing the WAL archive, restoring the base backup into a new cluster")
	if err := switchWAL(ctx, r.cfg.PostgresURL); err != nil {
		return rep, err
	}
	if err := r.servers.restore(ctx); err != nil {
		return rep, err
	}
	events, err := loadEvents(ctx, r.cfg.RestoreURL, r.workspace)
	if err != nil {
		return rep, fmt.Errorf("the restored cluster: %w", err)
	}
	rep.Events = len(events)
	counts := tokenCounts(events)
	for _, w := range writes {
		if w.Outcome != outcomeOK {
			continue
		}
		rep.Acknowledged++
		switch counts[w.Token] {
		case 0:
			rep.Lost++
		case 1:
		default:
			rep.Duplicated++
		}
	}
	if rep.Lost+rep.Duplicated > 0 {
		r.fail("restore: %d acknowledged writes missing from the restored cluster, %d more than once", rep.Lost, rep.Duplicated)
	}
	if rep.Events != liveEvents {
		r.fail("restore: the restored cluster has %d events of the workspace, the live one %d", rep.Events, liveEvents)
	}
	rep.ReadModels = r.rebuildReadModels(ctx, events)
	return rep, nil
}

// rebuildReadModels is the last step of the restore drill: the read models
// rebuilt from the restored cluster into a ClickHouse database of their own
// with `helpdeskflow migrate` and `helpdeskflow projections rebuild
// --drop-old`, as docs/runbook.md's drill does, then checked like the live
// ones: every event of the restored cluster (events) in audit_log exactly
// once with FINAL, and as many tickets as the live read model has.
func (r *run) rebuildReadModels(ctx context.Context, events []storedEvent) string {
	database := r.cfg.ClickHouseDatabase + "_restored"
	fail := func(format string, args ...any) string {
		msg := fmt.Sprintf(format, args...)
		r.fail("restore: read models: %s", msg)
		return "failed: " + msg
	}
	admin, err := openClickHouse(r.cfg.ClickHouseAddr, "default")
	if err != nil {
		return fail("%v", err)
	}
	defer admin.Close()
	if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+database); err != nil {
		return fail("drop %s: %v", database, err)
	}
	env := append(withoutHDF(r.cfg.Environ), "HDF_POSTGRES_URL="+r.cfg.RestoreURL, "HDF_CLICKHOUSE_ADDR="+r.cfg.ClickHouseAddr,
		"HDF_CLICKHOUSE_DATABASE="+database, "HDF_LOG_LEVEL=warn")
	start := time.Now()
	for _, args := range [][]string{{"migrate"}, {"projections", "rebuild", "--drop-old"}} {
		cmd := exec.CommandContext(ctx, r.cfg.Binary, args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = r.log, r.log
		r.logf("restore drill: helpdeskflow %s", strings.Join(args, " "))
		if err := cmd.Run(); err != nil {
			return fail("helpdeskflow %s: %v (see the run's log)", strings.Join(args, " "), err)
		}
	}
	took := time.Since(start)
	ch, err := openClickHouse(r.cfg.ClickHouseAddr, database)
	if err != nil {
		return fail("%v", err)
	}
	defer ch.Close()
	projected, err := projectedEvents(ctx, ch, r.workspace)
	if err != nil {
		return fail("%v", err)
	}
	tally, extra := tallyProjection(events, projected, 1, func(time.Time) int { return 0 })
	if tally[0].Failed() || extra > 0 {
		return fail("%d of %d events missing from the rebuilt audit_log, %d duplicated, %d not in the restored cluster",
			tally[0].Missing, tally[0].Events, tally[0].Duplicated, extra)
	}
	live, err := openClickHouse(r.cfg.ClickHouseAddr, r.cfg.ClickHouseDatabase)
	if err != nil {
		return fail("%v", err)
	}
	defer live.Close()
	var rebuilt, projectedLive uint64
	const tickets = "SELECT count() FROM tickets FINAL WHERE workspace_id = toUUID(?)"
	if err := ch.QueryRow(ctx, tickets, r.workspace).Scan(&rebuilt); err != nil {
		return fail("count the rebuilt tickets: %v", err)
	}
	if err := live.QueryRow(ctx, tickets, r.workspace).Scan(&projectedLive); err != nil {
		return fail("count the live tickets: %v", err)
	}
	if rebuilt != projectedLive {
		return fail("%d tickets rebuilt, %d in the live read model", rebuilt, projectedLive)
	}
	return fmt.Sprintf("rebuilt with `projections rebuild` in %s: %d events in audit_log exactly once, %d tickets as live",
		took.Round(100*time.Millisecond), tally[0].Events, rebuilt)
}

// Print writes the report as Markdown tables.
func (r *Report) Print(w io.Writer, cfg Config) {
	fmt.Fprintf(w, "\n### Chaos run: %d kill -9 cycles, broker and ClickHouse stopped for %s, Postgres restarted, restore drill\n\n", cfg.KillCycles, cfg.Outage)
	fmt.Fprintln(w, "| fault | writes acked | unknown (stored) | lost | dup | events | not in CH / dup FINAL | webhook events: received / perm. failed / missing | API requests (failed, unexcused) | longest API gap | recovery: ready / caught up | linearizable (ops, unknown) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "| %s | %d | %d (%d) | %d | %d | %d | %d / %d | %d / %d / %d | %d (%d, %d) | %s | %s | %s (%d, %d) |\n",
			p.Name, p.Store.Acknowledged, p.Store.Unknown, p.Store.UnknownKept, p.Store.Lost, p.Store.Duplicated,
			p.Projection.Events, p.Projection.Missing, p.Projection.Duplicated,
			p.Webhooks.Received, p.Webhooks.PermanentFailed, p.Webhooks.Missing,
			p.API.Requests, p.API.Failed, p.API.Unexcused, p.API.Longest.Round(time.Millisecond),
			recoveries(p.Recoveries), linResult(p.Linearizability), p.Linearizability.Operations, p.Linearizability.Unknown)
	}
	fmt.Fprintln(w)
	for _, p := range r.Phases {
		if byWhat := recoveriesByWhat(p.Recoveries); byWhat != "" {
			fmt.Fprintf(w, "- %s, recovery by process (ready / caught up): %s\n", p.Name, byWhat)
		}
	}
	var tables []string
	for _, t := range r.Tables {
		tables = append(tables, fmt.Sprintf("%s %d/%d", t.Table, t.Rows, t.Final))
	}
	fmt.Fprintf(w, "- ClickHouse after `OPTIMIZE TABLE … FINAL`, rows without/with FINAL: %s\n", strings.Join(tables, ", "))
	unlogged := 0
	for _, p := range r.Phases {
		unlogged += p.Webhooks.UnloggedAttempts
	}
	fmt.Fprintf(w, "- Webhook receiver: %d requests, %d answered 500, %d hung past the 3 s timeout; permanently failed deliveries with an attempt counted but not logged (a killed dispatcher's): %d\n",
		r.ReceiverRequests, r.ReceiverFailed, r.ReceiverHung, unlogged)
	fmt.Fprintf(w, "- Caught up %s after the load stopped\n", r.CaughtUp.Round(100*time.Millisecond))
	fmt.Fprintf(w, "- Restore drill (pg_basebackup under load + WAL archive, recovered to the archive's end): %d of %d acknowledged writes restored, %d lost, %d duplicated; %d events restored, %d live; read models: %s\n",
		r.Restore.Acknowledged-r.Restore.Lost, r.Restore.Acknowledged, r.Restore.Lost, r.Restore.Duplicated, r.Restore.Events, r.Restore.LiveEvents, r.Restore.ReadModels)
	if len(r.SelfExits) > 0 {
		var names []string
		for n, c := range r.SelfExits {
			names = append(names, fmt.Sprintf("%s %d", n, c))
		}
		slices.Sort(names)
		fmt.Fprintf(w, "- Processes that exited by themselves (restarted): %s\n", strings.Join(names, ", "))
	}
	if r.OK() {
		fmt.Fprintln(w, "- Result: PASS")
		return
	}
	fmt.Fprintln(w, "- Result: FAIL")
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}

// WriteSummary writes the report into WorkDir/summary.md and returns its path.
func (r *Report) WriteSummary(cfg Config) (string, error) {
	path := filepath.Join(cfg.WorkDir, "summary.md")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	r.Print(f, cfg)
	return path, f.Close()
}

func linResult(l linearizability) string {
	switch l.Result {
	case porcupine.Ok:
		return "yes"
	case porcupine.Illegal:
		return "NO"
	}
	return "unknown"
}

// recoveries sums up recovery times: the one, or median and max of many.
func recoveries(rs []recovery) string {
	switch len(rs) {
	case 0:
		return "–"
	case 1:
		return fmt.Sprintf("%s / %s", rs[0].Ready.Round(10*time.Millisecond), caughtString(rs[0].CaughtUp))
	}
	ready := make([]time.Duration, len(rs))
	caught := make([]time.Duration, len(rs))
	for i, x := range rs {
		ready[i], caught[i] = x.Ready, x.CaughtUp
	}
	slices.Sort(ready)
	// A probe that never caught up sorts last.
	slices.SortFunc(caught, func(a, b time.Duration) int {
		if a == notCaughtUp || b == notCaughtUp {
			return boolInt(a == notCaughtUp) - boolInt(b == notCaughtUp)
		}
		return int(a - b)
	})
	return fmt.Sprintf("p50 %s, max %s / p50 %s, max %s", ready[len(ready)/2].Round(10*time.Millisecond), ready[len(ready)-1].Round(10*time.Millisecond),
		caughtString(caught[len(caught)/2]), caughtString(caught[len(caught)-1]))
}

// recoveriesByWhat sums up the recoveries of a phase with more than one
// process recovering (the kills) per process, in name order: "projector
// (12) p50 …"; "" for a phase with one.
func recoveriesByWhat(rs []recovery) string {
	by := map[string][]recovery{}
	for _, x := range rs {
		by[x.What] = append(by[x.What], x)
	}
	if len(by) < 2 {
		return ""
	}
	var parts []string
	for _, what := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s (%d) %s", what, len(by[what]), recoveries(by[what])))
	}
	return strings.Join(parts, "; ")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

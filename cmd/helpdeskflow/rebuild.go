package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

const projectionsUsage = `usage: helpdeskflow projections rebuild [--tables tickets,customers,ticket_messages,audit_log,ticket_history] [--dry-run] [--drop-old] [--batch-size N]
       helpdeskflow projections drop-old [--tables ...]
(connections: HDF_POSTGRES_URL, HDF_CLICKHOUSE_ADDR, HDF_CLICKHOUSE_DATABASE, or their flags before "rebuild")`

// rebuildMemoryLimit is the memory limit of `projections rebuild` unless
// GOMEMLIMIT is set: about 1 KiB per ticket and customer held in memory
// (2 million of each at most, RebuildConfig.CacheSize) plus the batches.
const rebuildMemoryLimit = 2 << 30

// projectionsCommand runs `helpdeskflow projections rebuild|drop-old`.
func projectionsCommand(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "rebuild" && args[0] != "drop-old") {
		return errors.New(projectionsUsage)
	}
	fs := flag.NewFlagSet("projections "+args[0], flag.ContinueOnError)
	tables := fs.String("tables", strings.Join(projections.RebuildTables, ","), "comma-separated tables to rebuild (tickets includes its list tables; ticket_messages and ticket_history include tickets; ticket_history includes ticket_service and automation_firings)")
	var dryRun, dropOld *bool
	var batchSize *int
	if args[0] == "rebuild" {
		dryRun = fs.Bool("dry-run", false, "report the rows per table and the estimated time; write nothing")
		dropOld = fs.Bool("drop-old", false, "drop the tables the swap replaced once done (and those an earlier rebuild kept)")
		batchSize = fs.Int("batch-size", projections.DefaultRebuildBatchSize, "events read, folded and inserted at once")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(projectionsUsage)
	}
	var names []string
	for _, t := range strings.Split(*tables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			names = append(names, t)
		}
	}

	ch, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := projections.Migrate(ctx, ch); err != nil {
		return err
	}
	if args[0] == "drop-old" {
		dropped, err := projections.DropOldTables(ctx, ch, names)
		fmt.Fprintf(stdout, "dropped: %s\n", listOrNone(dropped))
		return err
	}

	db, err := pg.Connect(ctx, cfg.PostgresURL, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := eventstore.New(db, nil)
	if err != nil {
		return err
	}
	if memoryLimitTuned.Load() {
		// A rebuild keeps the folded state of every ticket and customer
		// and a few batches of rows in memory: more than the serving
		// roles' limit, under which the collector would run without pause.
		// It is a batch job bounded by that limit, so the heap may grow
		// further between collections than a server's (GOGC wins if set).
		debug.SetMemoryLimit(rebuildMemoryLimit)
		if _, ok := os.LookupEnv("GOGC"); !ok {
			debug.SetGCPercent(projections.RebuildGCPercent)
		}
	}
	bar := newProgressBar(stdout)
	report, err := projections.Rebuild(ctx, projections.RebuildConfig{
		ClickHouse: ch, Events: store, Tables: names, DryRun: *dryRun, DropOld: *dropOld, BatchSize: *batchSize,
		Progress: bar.update,
	})
	bar.done()
	printRebuildReport(stdout, report, *dryRun)
	return err
}

// printRebuildReport writes what the rebuild did or, dry, would do.
func printRebuildReport(w io.Writer, r projections.RebuildReport, dry bool) {
	for _, t := range r.Tables {
		recorded := r.Recorded[t]
		if recorded == 0 {
			recorded = 1 // as the migrations built it
		}
		line := fmt.Sprintf("%-20s version in code %d, in ClickHouse %d", t, r.Versions[t], recorded)
		if dry {
			line += fmt.Sprintf(", about %d rows", r.Rows[t])
		} else if n, ok := r.Inserted[t]; ok {
			line += fmt.Sprintf(", %d rows inserted", n)
		}
		fmt.Fprintln(w, line)
	}
	if dry {
		fmt.Fprintf(w, "dry run: %d events to fold; estimated %s (from reading and folding a sample); nothing written\n",
			r.Events, r.Estimate.Round(time.Second))
		return
	}
	if r.Resumed {
		fmt.Fprintf(w, "resumed from the checkpoint at %d:%d\n", r.ResumedFrom.TxID, r.ResumedFrom.Seq)
	}
	fmt.Fprintf(w, "events folded: %d\nold tables kept: %s\ndropped: %s\n", r.Events, listOrNone(r.Old), listOrNone(r.Dropped))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// progressBar shows a rebuild's progress: a bar redrawn in place on a
// terminal, a plain line every 5 s otherwise.
type progressBar struct {
	w        io.Writer
	terminal bool
	last     time.Time
	drawn    bool
}

func newProgressBar(w io.Writer) *progressBar {
	b := &progressBar{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.terminal = true
		}
	}
	return b
}

func (b *progressBar) update(p projections.RebuildProgress) {
	if b.terminal {
		const width = 30
		filled := 0
		if p.Total > 0 {
			filled = int(min(p.Events, p.Total) * width / p.Total)
		}
		fmt.Fprintf(b.w, "\r%-8s [%s%s] %d/%d events  %.0f/s  ETA %s   ", p.Phase,
			strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Events, p.Total, p.Rate(), p.ETA().Round(time.Second))
		b.drawn = true
		return
	}
	if time.Since(b.last) < 5*time.Second {
		return
	}
	b.last = time.Now()
	fmt.Fprintf(b.w, "%s: %d of about %d events, %.0f events/s, ETA %s\n", p.Phase, p.Events, p.Total, p.Rate(), p.ETA().Round(time.Second))
}

// done ends the bar's line.
func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}

package main

import (
	"fmt"
	"io"
)

// readSideCPURows adds the composite-read and list phases to a CPU split
// table.
func (r *results) readSideCPURows(row func(name string, s cpuSplit)) {
	if cr := r.CompositeRead; cr != nil {
		for _, p := range cr.Phases {
			row(fmt.Sprintf("reads c=%d", p.Concurrency), p.CPU)
		}
	}
	if lq := r.ListQuery; lq != nil {
		for _, p := range lq.Phases {
			row(fmt.Sprintf("list c=%d", p.Concurrency), p.CPU)
		}
	}
}

// printReadSide writes the composite-read and list sections of the table.
func (r *results) printReadSide(w io.Writer) {
	if cr := r.CompositeRead; cr != nil {
		fmt.Fprintf(w, "\nComposite read, GET /v1/tickets/{id}: %d tickets × %d messages (avg %d-byte bodies), 1 request in %d a write to them, %d-byte response (client side)\n",
			cr.Tickets, cr.Messages, cr.MessageBytes, readWriteEvery, cr.ResponseBytes)
		fmt.Fprintf(w, "%5s %11s %9s %9s %9s %7s %9s | %17s | %11s %7s | %9s %9s %9s\n", "c", "reads/s", "p50 ms", "p99 ms", "max ms", "errors", "writes/s",
			"server p50/p99", "static/s", "ratio", "hit rate", "reads/chk", "cache MB")
		for _, p := range cr.Phases {
			fmt.Fprintf(w, "%5d %11.0f %9.2f %9.2f %9.1f %7d %9.0f | %8.2f/%-8.2f | %11.0f %7.3f | %9.3f %9.1f %9.1f\n", p.Concurrency, p.Reads.PerSecond,
				p.Reads.LatencyMs.P50, p.Reads.LatencyMs.P99, p.Reads.LatencyMs.Max, p.Errors, p.Writes.PerSecond, p.ServerMs.P50, p.ServerMs.P99,
				p.Static.PerSecond, p.ReadsOverStatic, p.Cache.HitRate, p.Cache.ReadsPerCheck, p.Cache.Bytes/(1<<20))
		}
		fmt.Fprintf(w, "CPU per request (ms):\n")
		for _, p := range cr.Phases {
			x := p.CPUPerReadMs
			fmt.Fprintf(w, "  c=%-3d dev %.3f, postgres %.3f, clickhouse %.3f, bench %.3f; whole machine %.3f; Postgres tuples returned/request %.1f, waits: %s\n",
				p.Concurrency, x.Dev, x.Postgres, x.ClickHouse, x.Bench, x.Machine, p.TuplesReturnedPerRead, shares(p.PostgresWaits, 3))
		}
	}
	if lq := r.ListQuery; lq != nil {
		fmt.Fprintf(w, "\nList query, GET /v1/tickets: %s rows inserted in %.1f s; %d rows in the table, %d in the demo workspace (FINAL), %d active parts (tickets_by_created: %d, tickets_by_customer: %d)\n",
			thousands(lq.SeededTickets), lq.InsertSeconds, lq.TableRows, lq.DemoTickets, lq.ActiveParts, lq.ActivePartsList, lq.ActivePartsCust)
		for _, p := range lq.Phases {
			fmt.Fprintf(w, "  c=%-3d %7.1f queries/s, p50 %7.1f ms, p99 %7.1f ms, max %7.1f ms, errors %d; server p50/p99 %.1f/%.1f ms; CPU per query: dev %.2f, clickhouse %.2f ms\n",
				p.Concurrency, p.PerSecond, p.LatencyMs.P50, p.LatencyMs.P99, p.LatencyMs.Max, p.Errors, p.ServerMs.P50, p.ServerMs.P99,
				p.CPUPerQueryMs.Dev, p.CPUPerQueryMs.ClickHouse)
			for _, k := range p.ByKind {
				fmt.Fprintf(w, "        %-28s %6d req %7.1f/s  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms  %5.1f rows/page\n",
					k.Kind, k.Requests, k.PerSecond, k.LatencyMs.P50, k.LatencyMs.P99, k.LatencyMs.Max, k.RowsPerPage)
			}
		}
		for _, k := range lq.ServerTime {
			fmt.Fprintf(w, "  ClickHouse time, one request at a time: %-28s %4d req  %.1f queries/req  p50 %5.1f ms  p99 %5.1f ms  rows read p50 %.0f\n",
				k.Kind, k.Requests, k.QueriesPerRequest, k.Ms.P50, k.Ms.P99, k.ReadRowsP50)
		}
	}
}

// markdownReadSide writes the composite-read and list sections of
// summary.md.
func (r *results) markdownReadSide(w io.Writer) {
	if cr := r.CompositeRead; cr != nil {
		fmt.Fprintf(w, "\n## Composite read (GET /v1/tickets/{id}, %d tickets × %d messages, 5%% writes)\n\n", cr.Tickets, cr.Messages)
		fmt.Fprintf(w, "%d tickets, each created with a message and given %d replies (avg %d-byte HTML bodies) by direct command calls in %.1f s, then read at random, with one request in %d a write to one of them (PATCH of the priority and POST of a message in turn). The dev process answers each GET from its read cache, checked against the event store (version checks shared by concurrent reads). Response %d bytes. The static handler (this process, serving that response, same load generator, measured just before) and the empty handler are the baselines of the same run; reads/s and the read latencies count the GETs alone, the CPU split every request.\n\n",
			cr.Tickets, cr.Messages-1, cr.MessageBytes, cr.SeedSeconds, readWriteEvery, cr.ResponseBytes)
		fmt.Fprintf(w, "| c | reads/s | p50 ms | p99 ms | max ms | errors | writes/s | write p99 ms | server p50 / p99 ms | static handler req/s | reads ÷ static | empty handler req/s | cache hit rate | delta loads | misses | evictions | reads per version check | cache MB | CPU ms/request: dev | postgres | clickhouse | bench | machine | pg tuples/request | GC cycles |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range cr.Phases {
			x := p.CPUPerReadMs
			fmt.Fprintf(w, "| %d | %.0f | %.2f | %.2f | %.1f | %d | %.0f | %.2f | %.2f / %.2f | %.0f | %.3f | %.0f | %.3f | %.0f | %.0f | %.0f | %.1f | %.1f | %.3f | %.3f | %.3f | %.3f | %.3f | %.1f | %.0f |\n",
				p.Concurrency, p.Reads.PerSecond, p.Reads.LatencyMs.P50, p.Reads.LatencyMs.P99, p.Reads.LatencyMs.Max, p.Errors, p.Writes.PerSecond, p.Writes.LatencyMs.P99,
				p.ServerMs.P50, p.ServerMs.P99, p.Static.PerSecond, p.ReadsOverStatic, p.EmptyPerSec, p.Cache.HitRate, p.Cache.DeltaLoads, p.Cache.Misses,
				p.Cache.Evictions, p.Cache.ReadsPerCheck, p.Cache.Bytes/(1<<20), x.Dev, x.Postgres, x.ClickHouse, x.Bench, x.Machine, p.TuplesReturnedPerRead, p.GCCycles)
		}
		fmt.Fprintln(w)
		for _, p := range cr.Phases {
			fmt.Fprintf(w, "- c=%d: CPU split %s; version check p50/p99 %.2f/%.2f ms; Postgres waits: %s%s\n", p.Concurrency, cpuShares(p.CPU),
				p.Cache.CheckMs.P50, p.Cache.CheckMs.P99, shares(p.PostgresWaits, 5), errSuffix(p.PostgresError))
		}
	}
	if lq := r.ListQuery; lq != nil {
		fmt.Fprintf(w, "\n## List query (GET /v1/tickets, %s projected tickets)\n\n", thousands(lq.SeededTickets))
		fmt.Fprintf(w, "%s ticket rows inserted straight into the ClickHouse `tickets` table in batches of %s (native protocol) in %.1f s (%.0f rows/s), %.0f%% in the demo workspace and the rest in %d others; the materialized views copy them into `tickets_by_created` and `tickets_by_customer`, which the reader reads; merges settled after %.1f s, %d active parts of `tickets`, %d of `tickets_by_created` and %d of `tickets_by_customer` at the load. The table holds %d rows; the reader's view of the demo workspace (`FINAL`) %d tickets. Each worker sends the query kinds in turn with random filter values; a no-filter query starts a walk of %d pages by `next_cursor`; the page-%d kind reads page %d of no filter or of `status=open` by a cursor found once before the load; `updated_after` is %d days ago. %.0f s measured per level; only the first level warms up (%.0f s).\n\n",
			thousands(lq.SeededTickets), thousands(listBatchRows), lq.InsertSeconds, lq.InsertRowsPerSec, listDemoShare*100, lq.Workspaces-1,
			lq.MergeWaitSeconds, lq.ActiveParts, lq.ActivePartsList, lq.ActivePartsCust, lq.TableRows, lq.DemoTickets, lq.PagesPerWalk, listDeepPage, listDeepPage,
			lq.UpdatedAfterDays, lq.DurationSeconds, lq.WarmupSeconds)
		fmt.Fprintf(w, "| c | query | requests | queries/s | p50 ms | p99 ms | max ms | rows/page |\n|---|---|---|---|---|---|---|---|\n")
		for _, p := range lq.Phases {
			fmt.Fprintf(w, "| %d | **all** (errors %d) | %d | %.1f | %.1f | %.1f | %.1f | |\n", p.Concurrency, p.Errors, p.Requests, p.PerSecond,
				p.LatencyMs.P50, p.LatencyMs.P99, p.LatencyMs.Max)
			for _, k := range p.ByKind {
				fmt.Fprintf(w, "| %d | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", p.Concurrency, k.Kind, k.Requests, k.PerSecond,
					k.LatencyMs.P50, k.LatencyMs.P99, k.LatencyMs.Max, k.RowsPerPage)
			}
		}
		fmt.Fprintln(w)
		for _, p := range lq.Phases {
			x := p.CPUPerQueryMs
			fmt.Fprintf(w, "- c=%d: server p50 / p99 %.1f / %.1f ms (buckets end at 2,500 ms); CPU per query: dev %.2f ms, ClickHouse %.2f ms, bench %.2f ms, machine %.2f ms; ClickHouse still ran list queries %.1f s after the load%s\n",
				p.Concurrency, p.ServerMs.P50, p.ServerMs.P99, x.Dev, x.ClickHouse, x.Bench, x.Machine, p.DrainSeconds, errorsSuffix(p.loadStats))
		}
		if len(lq.ServerTime) > 0 {
			fmt.Fprintf(w, "\nClickHouse's own time per request by kind (`system.query_log`, the sum over a request's queries), %d requests of each kind sent one at a time through the reader after the load:\n\n", listServerRequests)
			fmt.Fprintf(w, "| query | requests | ClickHouse queries/request | p50 ms | p99 ms | max ms | rows read p50 |\n|---|---|---|---|---|---|---|\n")
			for _, k := range lq.ServerTime {
				fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.0f |\n", k.Kind, k.Requests, k.QueriesPerRequest, k.Ms.P50, k.Ms.P99, k.Ms.Max, k.ReadRowsP50)
			}
		}
	}
}

// errorsSuffix names a phase's failed requests by kind, "" when none.
func errorsSuffix(ls loadStats) string {
	if ls.Errors == 0 {
		return ""
	}
	return fmt.Sprintf("; %d failed %v, the first: `%s`", ls.Errors, ls.ErrorsByKind, ls.FirstError)
}

// cpuShares names where a window's CPU went, in % of one core.
func cpuShares(s cpuSplit) string {
	return fmt.Sprintf("dev %.0f%%, postgres %.0f%%, clickhouse %.0f%%, bench %.0f%%, other %.0f%%, machine busy %.0f%% of %d cores",
		s.DevPct, s.PostgresPct, s.ClickHousePct, s.LoadGenPct, s.OtherPct, s.MachineBusyPct, s.Cores)
}

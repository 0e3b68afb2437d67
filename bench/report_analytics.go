package main

import (
	"fmt"
	"io"
)

// markdownAnalytics writes the analytics section of summary.md: each query
// of docs/analytics.md with its median time over analyticsRuns runs.
func (r *results) markdownAnalytics(w io.Writer) {
	a := r.Analytics
	if a == nil {
		return
	}
	fmt.Fprintf(w, "\n## Analytics queries (docs/analytics.md)\n\n")
	if a.Error != "" {
		fmt.Fprintf(w, "Failed: %s\n", a.Error)
		return
	}
	fmt.Fprintf(w, "History: %d tickets (%d events each, over 12 weeks, 10 workspaces) and %d customers seeded by SQL into Postgres `%s` (reused: %v, %.0f s), "+
		"projected by the projector's fold (`projections.Rebuild`) into ClickHouse `%s` (reused: %v, %.0f s), plus %d API requests inserted into `api_requests`. "+
		"Each query runs %d times for workspace 0 (a tenth of the data) over the whole range; the median is reported. Rows: %v.\n\n",
		a.Tickets, analyticsTicketEvents, analyticsCustomers, a.StoreDatabase, a.SeedReused, a.SeedSeconds, a.CHDatabase, a.ProjectReused, a.ProjectSeconds,
		analyticsAPIRequests, analyticsRuns, a.Rows)
	fmt.Fprintf(w, "| query | median ms | runs (s) | rows |\n|---|---|---|---|\n")
	for _, q := range a.Queries {
		if q.Error != "" {
			fmt.Fprintf(w, "| %s | failed: %s | | |\n", q.Name, q.Error)
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %v | %d |\n", q.Name, q.MedianMs, q.Seconds, q.Rows)
	}
}

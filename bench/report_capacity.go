package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// The capacity model: the capacity phase's CPU per create of each process,
// multiplied out to a target rate. Its assumptions are constants here and
// stated under the table in summary.md.
const (
	capacityPartitions     = 8    // the broker's partitions per topic (`helpdeskflow broker` creates as many as dev: topicPartitions)
	modelCoresPerProcess   = 2.0  // a process of a role gets 2 cores
	modelUtilisation       = 0.6  // and is planned to run at 60% of them, for bursts and a lost node
	modelClickHouseCores   = 16.0 // cores of one ClickHouse shard
	modelPostgresCores     = 64.0 // cores of the largest Postgres primary planned for
	modelPartitionHeadroom = 2.0  // Kafka partitions per consumer process needed, for rebalances and growth
)

// capacityModelRow is what one target rate of creates needs.
type capacityModelRow struct {
	CreatesPerSec    float64            `json:"creates_per_second"`
	EventsPerSec     float64            `json:"events_per_second"`
	Cores            map[string]float64 `json:"cores"`     // by process kind, CPU busy at the rate
	Processes        map[string]int     `json:"processes"` // of each role
	Partitions       int                `json:"kafka_partitions"`
	ClickHouseShards int                `json:"clickhouse_shards"`
	PostgresCores    float64            `json:"postgres_cores"`
	WALMBPerSec      float64            `json:"wal_mb_per_second"`
	OneStoreFits     bool               `json:"one_event_store_fits"`    // one Postgres primary and its one publishing relay
	Binding          string             `json:"one_event_store_binding"` // "postgres" or "relay": which runs out first
}

// capacityModel multiplies the phase's costs out to 10k and 100k creates/s.
func capacityModel(c *capacityResult, r *results) []capacityModelRow {
	var rows []capacityModelRow
	for _, rate := range []float64{10_000, 100_000} {
		m := capacityModelRow{CreatesPerSec: rate, EventsPerSec: rate * c.EventsPerCreate, Cores: map[string]float64{}, Processes: map[string]int{}}
		for _, p := range capacityProcs {
			m.Cores[p] = round1(rate * c.PerCreateMs[p] / 1000)
		}
		for _, role := range shapeRoles {
			m.Processes[role] = max(2, int(math.Ceil(m.Cores[role]/(modelCoresPerProcess*modelUtilisation))))
		}
		// One relay publishes at a time (its lease); the second is a standby.
		m.Processes["relay"] = 2
		consumers := max(m.Processes["projector"], m.Processes["dispatcher"])
		m.Partitions = int(math.Ceil(float64(consumers) * modelPartitionHeadroom))
		m.ClickHouseShards = max(1, int(math.Ceil(m.Cores["clickhouse"]/(modelClickHouseCores*modelUtilisation))))
		m.PostgresCores = m.Cores["postgres"]
		m.WALMBPerSec = round1(rate * c.WALPerCreate / 1e6)
		ceiling, binding := c.storeCeiling()
		m.OneStoreFits, m.Binding = rate <= ceiling, binding
		rows = append(rows, m)
	}
	return rows
}

// relayCeiling is the creates/s at which one relay process (the only one
// publishing) runs out of its planned cores.
func (c *capacityResult) relayCeiling() float64 {
	if c.PerCreateMs["relay"] <= 0 {
		return 0
	}
	return modelCoresPerProcess * modelUtilisation * 1000 / c.PerCreateMs["relay"]
}

// postgresCeiling is the creates/s at which the largest primary planned
// for runs out of its planned cores.
func (c *capacityResult) postgresCeiling() float64 {
	if c.PerCreateMs["postgres"] <= 0 {
		return 0
	}
	return modelPostgresCores * modelUtilisation * 1000 / c.PerCreateMs["postgres"]
}

// storeCeiling is the creates/s one event store takes (the lower of its
// relay's and its primary's ceilings) and which of the two binds.
func (c *capacityResult) storeCeiling() (float64, string) {
	r, p := c.relayCeiling(), c.postgresCeiling()
	if r < p {
		return r, "relay"
	}
	return p, "postgres"
}

func (r *results) markdownCapacity(w io.Writer) {
	c := r.Capacity
	if c == nil {
		return
	}
	fmt.Fprintf(w, "\n## Capacity: the production shape, one process per role\n\n")
	fmt.Fprintf(w, "`serve --roles api`, `relay`, `projector`, `dispatcher` and `helpdeskflow broker` (kfake, %d partitions per topic) as separate processes on databases of their own; "+
		"%d creates at %.0f/s (%d errors), each with one webhook delivery (%d received), %.2f events per create; then %d composite reads at %.0f/s (%d errors). "+
		"CPU is counted from an idle pipeline until it has caught up (%.1f s after the load), minus each process's idle CPU over as long.\n\n",
		c.Partitions, c.Creates, c.CreateRate, c.CreateErrors, c.Deliveries, c.EventsPerCreate, c.Reads, c.ReadRate, c.ReadErrors, c.CatchUpSeconds)
	fmt.Fprintf(w, "| process | idle %% of a core | CPU ms per create | CPU ms per event | CPU ms per read | RSS after |\n|---|---|---|---|---|---|\n")
	for _, p := range capacityProcs {
		perEvent := 0.0
		if c.EventsPerCreate > 0 {
			perEvent = c.PerCreateMs[p] / c.EventsPerCreate
		}
		rss := "–"
		if kb, ok := c.RSSKB[p]; ok {
			rss = mb(kb)
		}
		fmt.Fprintf(w, "| %s | %.1f | %.3f | %.3f | %.3f | %s |\n", p, c.IdlePct[p], c.PerCreateMs[p], perEvent, c.PerReadMs[p], rss)
	}
	fmt.Fprintf(w, "\nWAL: %.0f bytes per create (the whole server's `pg_current_wal_lsn` over the create span).", c.WALPerCreate)
	if cr := r.createLevel(targetCreatesC); cr != nil && cr.PerSecond > 0 {
		fmt.Fprintf(w, " This machine's append path saturated at %.0f creates/s (%.0f events/s) at c=%d in this run (all roles, the broker, both servers and the load generator on %d cores).",
			cr.PerSecond, cr.PerSecond*c.EventsPerCreate, targetCreatesC, r.Host.CPUs)
	}
	fmt.Fprintf(w, "\n\nThe model (per-create costs above × rate; a role's process gets %.0f cores planned at %.0f%%; a ClickHouse shard %.0f cores at %.0f%%; %.0f× as many Kafka partitions as consumer processes of the larger consumer role):\n\n",
		modelCoresPerProcess, modelUtilisation*100, modelClickHouseCores, modelUtilisation*100, modelPartitionHeadroom)
	fmt.Fprintf(w, "| creates/s | events/s | %s | api / relay / projector / dispatcher processes | partitions | ClickHouse shards | WAL MB/s | one event store |\n|---|---|%s---|---|---|---|---|\n",
		strings.Join(mapStrings(capacityProcs, func(p string) string { return p + " cores" }), " | "), strings.Repeat("---|", len(capacityProcs)))
	for _, m := range c.Model {
		fits := "fits"
		if !m.OneStoreFits {
			fits = "**does not fit** (" + m.Binding + "): partition the event store"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d / %d / %d / %d | %d | %d | %.1f | %s |\n", thousands(int(m.CreatesPerSec)), thousands(int(m.EventsPerSec)),
			strings.Join(mapStrings(capacityProcs, func(p string) string { return fmt.Sprintf("%.1f", m.Cores[p]) }), " | "),
			m.Processes["api"], m.Processes["relay"], m.Processes["projector"], m.Processes["dispatcher"], m.Partitions, m.ClickHouseShards, m.WALMBPerSec, fits)
	}
	fmt.Fprintf(w, "\nCeilings of one event store: the one publishing relay runs out of its %.1f planned cores at %s creates/s; a %.0f-core Postgres primary at %s creates/s. "+
		"Broker cores are kfake's, not Kafka's: read them as an upper bound.\n",
		modelCoresPerProcess*modelUtilisation, thousands(int(c.relayCeiling())), modelPostgresCores, thousands(int(c.postgresCeiling())))
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// pgActivity is a poor man's profile of the bench database's backends
// during a phase: pg_stat_activity sampled every 50 ms, non-idle backends
// counted by wait event ("CPU" when not waiting) and by statement.
type pgActivity struct {
	Samples    int     `json:"samples"`
	AvgNonIdle float64 `json:"avg_non_idle_backends"`
	// AvgOtherDBs is the same for the server's other databases: other
	// people's work on the shared server.
	AvgOtherDBs   float64      `json:"avg_non_idle_backends_other_databases"`
	WaitEvents    []countShare `json:"wait_events"`
	Statements    []countShare `json:"statements"`
	SampleError   string       `json:"sample_error,omitempty"`
	IntervalMs    float64      `json:"interval_ms"`
	ShareOfSample string       `json:"share_is"`
}

type countShare struct {
	Key   string  `json:"key"`
	Count int     `json:"count"`
	Share float64 `json:"share"`
}

const pgActivityQuery = `SELECT COALESCE(wait_event_type || ':' || wait_event, 'CPU'), state,
	left(regexp_replace(query, '\s+', ' ', 'g'), 90), datname = current_database()
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle' AND backend_type = 'client backend'`

type pgSampler struct {
	stop, done chan struct{}
	act        pgActivity
	waits      map[string]int
	stmts      map[string]int
	total      int
	otherDBs   int
}

func startPgSampler(ctx context.Context, db *pgDatabase, after time.Duration) *pgSampler {
	s := &pgSampler{stop: make(chan struct{}), done: make(chan struct{}), waits: map[string]int{}, stmts: map[string]int{}}
	s.act.IntervalMs = 50
	s.act.ShareOfSample = "fraction of all non-idle backend observations"
	go func() {
		defer close(s.done)
		select {
		case <-time.After(after):
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 20*3600; i++ {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			rows, err := db.queryRows(qctx, pgActivityQuery)
			cancel()
			if err != nil {
				s.act.SampleError = err.Error()
			} else {
				s.act.Samples++
				for _, r := range rows {
					if len(r) < 4 {
						continue
					}
					if mine, _ := r[3].(bool); !mine {
						s.otherDBs++
						continue
					}
					wait, state, query := fmt.Sprint(r[0]), fmt.Sprint(r[1]), fmt.Sprint(r[2])
					s.waits[wait]++
					s.stmts[state+" | "+query]++
					s.total++
				}
			}
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *pgSampler) finish() pgActivity {
	close(s.stop)
	<-s.done
	if s.act.Samples > 0 {
		s.act.AvgNonIdle = math.Round(float64(s.total)/float64(s.act.Samples)*100) / 100
		s.act.AvgOtherDBs = math.Round(float64(s.otherDBs)/float64(s.act.Samples)*100) / 100
	}
	s.act.WaitEvents = topShares(s.waits, s.total, 10)
	s.act.Statements = topShares(s.stmts, s.total, 12)
	return s.act
}

func topShares(m map[string]int, total, n int) []countShare {
	var out []countShare
	for k, v := range m {
		out = append(out, countShare{Key: k, Count: v, Share: math.Round(float64(v)/float64(max(total, 1))*1000) / 1000})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Count > out[j].Count || (out[i].Count == out[j].Count && out[i].Key < out[j].Key)
	})
	return out[:min(len(out), n)]
}

// pgDBStats is pg_stat_database of the bench database (cumulative).
type pgDBStats struct {
	Commits   float64 `json:"xact_commit"`
	Rollbacks float64 `json:"xact_rollback"`
	Inserted  float64 `json:"tup_inserted"`
	Updated   float64 `json:"tup_updated"`
	Fetched   float64 `json:"tup_fetched"`
	Returned  float64 `json:"tup_returned"`
	BlksHit   float64 `json:"blks_hit"`
	BlksRead  float64 `json:"blks_read"`
}

func readPgDBStats(ctx context.Context, db *pgDatabase) (pgDBStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// A fresh snapshot of the shared statistics, not the transaction's cached one.
	rows, err := db.queryRows(ctx, `SELECT xact_commit::text, xact_rollback::text, tup_inserted::text, tup_updated::text,
		tup_fetched::text, tup_returned::text, blks_hit::text, blks_read::text
		FROM pg_stat_database WHERE datname = current_database()`)
	if err != nil || len(rows) != 1 || len(rows[0]) != 8 {
		return pgDBStats{}, fmt.Errorf("read pg_stat_database: %v", err)
	}
	f := func(i int) float64 { v, _ := strconv.ParseFloat(fmt.Sprint(rows[0][i]), 64); return v }
	return pgDBStats{Commits: f(0), Rollbacks: f(1), Inserted: f(2), Updated: f(3), Fetched: f(4), Returned: f(5), BlksHit: f(6), BlksRead: f(7)}, nil
}

func (a pgDBStats) since(b pgDBStats) pgDBStats {
	return pgDBStats{Commits: a.Commits - b.Commits, Rollbacks: a.Rollbacks - b.Rollbacks, Inserted: a.Inserted - b.Inserted,
		Updated: a.Updated - b.Updated, Fetched: a.Fetched - b.Fetched, Returned: a.Returned - b.Returned,
		BlksHit: a.BlksHit - b.BlksHit, BlksRead: a.BlksRead - b.BlksRead}
}

// pgPhase is Postgres's side of one create phase.
type pgPhase struct {
	Delta             pgDBStats  `json:"pg_stat_database_delta"`
	CommitsPerCreate  float64    `json:"commits_per_create"`
	RowsReadPerCreate float64    `json:"tuples_returned_per_create"`
	Activity          pgActivity `json:"activity"`
	Error             string     `json:"error,omitempty"`
}

// tableStats is pg_stat_user_tables of the bench database at the end.
func tableStats(ctx context.Context, db *pgDatabase) ([]map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := db.queryRows(ctx, `SELECT relname::text, seq_scan::text, seq_tup_read::text, COALESCE(idx_scan, 0)::text,
		COALESCE(idx_tup_fetch, 0)::text, n_tup_ins::text, n_tup_upd::text, n_tup_hot_upd::text, n_live_tup::text, n_dead_tup::text
		FROM pg_stat_user_tables ORDER BY seq_tup_read + COALESCE(idx_tup_fetch, 0) DESC`)
	if err != nil {
		return nil, err
	}
	cols := []string{"table", "seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_live_tup", "n_dead_tup"}
	var out []map[string]string
	for _, r := range rows {
		m := map[string]string{}
		for i, c := range cols {
			if i < len(r) {
				m[c] = fmt.Sprint(r[i])
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	n, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	return n
}

package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// seedTickets inserts n ticket rows straight into the read model, in
// batches of listBatchRows over the native protocol: listDemoShare of them
// in workspace ws, the rest spread over listOtherSpaces other workspaces.
// Each row is version 1.. of a ticket id of its own, so FINAL keeps every
// one. The rows are deterministic (fixed seed) up to now.
func (b *bench) seedTickets(ctx context.Context, ws uuid.UUID, n int) (listSeed, error) {
	r := rand.New(rand.NewPCG(2026, 11))
	newID := func() uuid.UUID {
		var u uuid.UUID
		for i := range u {
			u[i] = byte(r.Uint32())
		}
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		return u
	}
	seed := listSeed{now: time.Now().UTC(), demoCusts: int(listCustomers * listDemoShare)}
	seed.customers = make([]uuid.UUID, listCustomers)
	for i := range seed.customers {
		seed.customers[i] = newID()
	}
	others := make([]uuid.UUID, listOtherSpaces)
	for i := range others {
		others[i] = newID()
	}
	agents := make([]string, 200)
	for i := range agents {
		agents[i] = newID().String()
	}
	tagWeights := make(weighted[string], len(listTags))
	for i, t := range listTags {
		tagWeights[i].v, tagWeights[i].w = t, 1000/(i+1)
	}
	nowMs := seed.now.UnixMilli()
	const day = int64(24 * time.Hour / time.Millisecond)

	for done := 0; done < n; {
		size := min(listBatchRows, n-done)
		var (
			wsCol, idCol, custCol                                   = make([]uuid.UUID, size), make([]uuid.UUID, size), make([]uuid.UUID, size)
			versions                                                = make([]uint64, size)
			subjCol, statusCol, prioCol, typeCol, chanCol, assignee = make([]string, size), make([]string, size), make([]string, size), make([]string, size), make([]string, size), make([]string, size)
			teamCol, extCol, fieldsCol                              = make([]string, size), make([]string, size), make([]string, size)
			tagsCol                                                 = make([][]string, size)
			msgCol                                                  = make([]uint32, size)
			createdCol, updatedCol                                  = make([]int64, size), make([]int64, size)
		)
		for i := 0; i < size; i++ {
			// Customers: a skewed spread (some have many tickets), each
			// customer in one workspace.
			var c int
			if r.Float64() < listDemoShare {
				wsCol[i] = ws
				c = int(float64(seed.demoCusts) * math.Pow(r.Float64(), 2))
			} else {
				c = seed.demoCusts + r.IntN(listCustomers-seed.demoCusts)
				wsCol[i] = others[c%listOtherSpaces]
			}
			custCol[i] = seed.customers[c]
			idCol[i] = newID()
			age := r.Int64N(listHistoryDays * day)
			updatedCol[i] = nowMs - age
			createdCol[i] = updatedCol[i] - min(int64(r.ExpFloat64()*3*float64(day)), 60*day)
			if age < 14*day {
				statusCol[i] = listRecentStatus.pick(r)
			} else {
				statusCol[i] = listOldStatus.pick(r)
			}
			prioCol[i] = listPriority.pick(r)
			typeCol[i] = listTypes.pick(r)
			chanCol[i] = listChannels.pick(r)
			subjCol[i] = fmt.Sprintf(subjects[r.IntN(len(subjects))], 10000+r.IntN(90000))
			tags := make([]string, 0, 5)
			for k := listTagCount.pick(r); len(tags) < k; {
				if t := tagWeights.pick(r); !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
			}
			tagsCol[i] = tags
			if r.Float64() >= listUnassignedPct {
				teamCol[i] = listTeams[r.IntN(len(listTeams))]
				if r.IntN(10) < 8 {
					assignee[i] = agents[r.IntN(len(agents))]
				}
			}
			fieldsCol[i] = "{}"
			if r.IntN(10) < 3 {
				fieldsCol[i] = fmt.Sprintf(`{"order_id":"%d","plan":"%s"}`, 100000+r.IntN(900000), []string{"free", "pro", "business"}[r.IntN(3)])
			}
			if r.IntN(10) == 0 {
				extCol[i] = fmt.Sprintf("ZD-%07d", r.IntN(10000000))
			}
			msgCol[i] = uint32(1 + min(int(r.ExpFloat64()*3), 60))
			versions[i] = uint64(msgCol[i]) + uint64(r.IntN(4))
		}
		cols := []any{wsCol, idCol, versions, subjCol, statusCol, prioCol, typeCol, chanCol, tagsCol, custCol,
			assignee, teamCol, extCol, fieldsCol, msgCol, createdCol, updatedCol}
		if err := b.insertTickets(ctx, cols); err != nil {
			return seed, fmt.Errorf("insert tickets %d–%d: %w", done, done+size, err)
		}
		done += size
	}
	return seed, nil
}

// insertTickets sends one batch, column by column, in the order of
// projections' ticketColumns.
func (b *bench) insertTickets(ctx context.Context, cols []any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	batch, err := b.ch.PrepareBatch(ctx, "INSERT INTO "+b.chDB+".tickets (workspace_id, ticket_id, version, subject, status, priority, type, channel, tags, customer_id, "+
		"assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms)")
	if err != nil {
		return err
	}
	defer batch.Close()
	for i, c := range cols {
		if err := batch.Column(i).Append(c); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return batch.Send()
}

// waitMerges waits, up to limit, until ClickHouse has run no merge on the
// tickets and tickets_by_created tables (the view fills the latter from
// the former) and their number of active parts has not changed for three
// seconds, so the load measures queries and not a merge after a bulk
// insert.
func (b *bench) waitMerges(ctx context.Context, limit time.Duration) error {
	start := time.Now()
	var lastParts uint64
	stableSince := time.Now()
	for i := 0; i < 10000 && time.Since(start) < limit && ctx.Err() == nil; i++ {
		var merges, parts uint64
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := b.ch.QueryRow(qctx, "SELECT count() FROM system.merges WHERE database = ? AND table IN ('tickets', 'tickets_by_created', 'tickets_by_customer')", b.chDB).Scan(&merges)
		if err == nil {
			err = b.ch.QueryRow(qctx, "SELECT count() FROM system.parts WHERE database = ? AND table IN ('tickets', 'tickets_by_created', 'tickets_by_customer') AND active", b.chDB).Scan(&parts)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("read system.merges: %w", err)
		}
		if merges > 0 || parts != lastParts {
			lastParts, stableSince = parts, time.Now()
		} else if time.Since(stableSince) >= 3*time.Second {
			return nil
		}
		poll.Sleep(ctx, 250*time.Millisecond)
	}
	return fmt.Errorf("merges on the tickets tables still running after %s", limit)
}

// waitListQueries waits, up to limit, until ClickHouse runs no query on
// the list table (the reader's), and returns how long that took.
func (b *bench) waitListQueries(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for i := 0; i < 10000 && time.Since(start) < limit && ctx.Err() == nil; i++ {
		var n uint64
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		// The pattern is built so that this query's own text does not
		// match. system.processes does not name the database: tests
		// sharing the server could be counted too, which only waits longer.
		err := b.ch.QueryRow(qctx, "SELECT count() FROM system.processes WHERE position(query, concat('FROM tickets', '_by_created')) > 0").Scan(&n)
		cancel()
		if err != nil {
			return time.Since(start), fmt.Errorf("read system.processes: %w", err)
		}
		if n == 0 {
			return time.Since(start), nil
		}
		poll.Sleep(ctx, 100*time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("list queries still running in ClickHouse after %s", limit)
}

// activeParts is the number of active parts of table, 0 if unknown.
func (b *bench) activeParts(ctx context.Context, table string) uint64 {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n uint64
	b.ch.QueryRow(qctx, "SELECT count() FROM system.parts WHERE database = ? AND table = ? AND active", b.chDB, table).Scan(&n)
	return n
}

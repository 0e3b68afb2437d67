package projections

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// listTable is the table ticket lists read: tickets sorted by (workspace_id,
// created_at_ms, ticket_id) (migration 0007).
const listTable = "tickets_by_created"

// listWindows are how far below the page's top the created_at windows a
// list page is first looked for in reach, newest first: the day below the
// top, then the week below that. Each window is a narrow range of the sorting key, so reading
// it with FINAL merges only the window's rows (on 18.16, about 1 ms for a
// day of 5,000 tickets against 40 ms or more for a million), enough for
// most pages of filters that match more than a few tickets a day.
var listWindows = []time.Duration{24 * time.Hour, 8 * 24 * time.Hour}

// Candidate rounds below the windows: the first asks for
// candidateFactor × the keys still needed, each further round
// candidateGrowth times more; after candidateRounds rounds, one FINAL query
// reads the rest.
const (
	candidateFactor = 2
	candidateGrowth = 4
	candidateRounds = 3
)

// listQuery is a ticket list query: its workspace, page size and filter
// as SQL conditions (joined with AND, "" for none) with their arguments;
// selective is set when the filter is known to match few tickets (a
// customer's), so that no window is worth reading.
type listQuery struct {
	workspaceID uuid.UUID
	limit       int
	filter      string
	args        []any
	selective   bool
}

// pageKeys returns the sort keys of up to q.limit+1 tickets matching q
// below after (nil: from the newest), newest first: the page and, when
// there is one, the first key of the next page.
//
// Newest-first reads go in three steps, each only when the one before did
// not fill the page:
//
//  1. The listWindows, with FINAL inside each (a ticket's versions share
//     their key, so FINAL in a range sees all of them). The first window
//     ends at the cursor (or includes everything newer than now), the next
//     below it. A customer filter (q.selective) skips them: a customer's tickets are too
//     few for any window to fill a page.
//  2. Below the windows, candidates: the newest keys with a row of any
//     version that matches, read without FINAL (no merge, a scan of the
//     filter's columns: about 5 ms for a customer over a million tickets),
//     then checked with FINAL on those keys only (a few index granules).
//     Every ticket whose latest version matches has that row among the
//     candidates; a candidate whose latest version no longer matches (a
//     ticket moved to another customer by a merge, an older status) is
//     dropped by the check. A round that checks fewer than needed continues
//     below its last candidate.
//  3. After candidateRounds rounds (candidates that keep failing the check,
//     such as the old tickets of a merged customer not merged away yet),
//     one FINAL query over the rest.
func (r *TicketReader) pageKeys(ctx context.Context, q listQuery, after *cursor, now time.Time) ([]cursor, error) {
	need := q.limit + 1
	var keys []cursor
	top := after
	if !q.selective {
		anchor := now.UnixMilli()
		if after != nil {
			anchor = after.createdAtMs
		}
		for _, depth := range listWindows {
			from := anchor - depth.Milliseconds()
			found, err := r.queryKeys(ctx, q, top, from, "FINAL", need-len(keys))
			if err != nil {
				return nil, err
			}
			keys = append(keys, found...)
			if len(keys) == need {
				return keys, nil
			}
			top = &cursor{createdAtMs: from}
		}
	}

	want := candidateFactor * (need - len(keys))
	for range candidateRounds {
		candidates, err := r.queryKeys(ctx, q, top, noLowerBound, "", want)
		if err != nil {
			return nil, err
		}
		exhausted := len(candidates) < want
		candidates = distinctKeys(candidates)
		if len(candidates) == 0 {
			return keys, nil
		}
		found, err := r.checkKeys(ctx, q, candidates, need-len(keys))
		if err != nil {
			return nil, err
		}
		keys = append(keys, found...)
		if len(keys) == need || exhausted {
			return keys, nil
		}
		top = &candidates[len(candidates)-1]
		want *= candidateGrowth
	}
	found, err := r.queryKeys(ctx, q, top, noLowerBound, "FINAL", need-len(keys))
	if err != nil {
		return nil, err
	}
	return append(keys, found...), nil
}

// noLowerBound is the from of queryKeys for "no lower bound".
const noLowerBound = int64(-1 << 63)

// queryKeys returns the keys of the newest n rows of q's workspace that
// match q's filter, with created_at_ms >= from and below top (nil: no upper
// bound), newest first. final is "FINAL" (the latest version of each
// ticket decides; one key per ticket) or "" (any version; a ticket with
// several matching versions not merged yet comes once per version).
func (r *TicketReader) queryKeys(ctx context.Context, q listQuery, top *cursor, from int64, final string, n int) ([]cursor, error) {
	where := []string{"workspace_id = toUUID(?)"}
	args := []any{q.workspaceID.String()}
	if from != noLowerBound {
		where, args = append(where, "created_at_ms >= ?"), append(args, from)
	}
	if top != nil {
		where = append(where, "(created_at_ms < ? OR (created_at_ms = ? AND ticket_id < toUUID(?)))")
		args = append(args, top.createdAtMs, top.createdAtMs, top.ticketID.String())
	}
	if q.filter != "" {
		where, args = append(where, q.filter), append(args, q.args...)
	}
	args = append(args, n)
	return r.keys(ctx, "SELECT created_at_ms, ticket_id FROM "+listTable+" "+final+" WHERE "+strings.Join(where, " AND ")+
		" ORDER BY created_at_ms DESC, ticket_id DESC LIMIT ?", args...)
}

// checkKeys returns those of candidates (newest first, distinct) whose
// latest version matches q's filter, at most n, newest first.
func (r *TicketReader) checkKeys(ctx context.Context, q listQuery, candidates []cursor, n int) ([]cursor, error) {
	where := "workspace_id = toUUID(?) AND " + keysIn(candidates)
	args := []any{q.workspaceID.String()}
	if q.filter != "" {
		where, args = where+" AND "+q.filter, append(args, q.args...)
	}
	args = append(args, n)
	return r.keys(ctx, "SELECT created_at_ms, ticket_id FROM "+listTable+" FINAL WHERE "+where+
		" ORDER BY created_at_ms DESC, ticket_id DESC LIMIT ?", args...)
}

// keysIn is the condition that selects the rows of keys by the sorting
// key, so that the index narrows the read to their granules. A ticket has
// one created_at, so the two sets select no other ticket. The values are
// integers and uuid.UUID.String, so inlining them is safe.
func keysIn(keys []cursor) string {
	var created, ids strings.Builder
	for i, k := range keys {
		if i > 0 {
			created.WriteString(", ")
			ids.WriteString(", ")
		}
		created.WriteString(strconv.FormatInt(k.createdAtMs, 10))
		ids.WriteString("toUUID('" + k.ticketID.String() + "')")
	}
	return "created_at_ms IN (" + created.String() + ") AND ticket_id IN (" + ids.String() + ")"
}

// distinctKeys drops the repeats of sorted keys (the versions of one
// ticket that are not merged yet).
func distinctKeys(keys []cursor) []cursor {
	out := keys[:0]
	for i, k := range keys {
		if i == 0 || k != keys[i-1] {
			out = append(out, k)
		}
	}
	return out
}

// keys runs a query that selects (created_at_ms, ticket_id), in its order.
func (r *TicketReader) keys(ctx context.Context, query string, args ...any) ([]cursor, error) {
	rows, err := r.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, chError("list tickets", err)
	}
	defer rows.Close()
	var keys []cursor
	for rows.Next() {
		var k cursor
		if err := rows.Scan(&k.createdAtMs, &k.ticketID); err != nil {
			return nil, chError("list tickets", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, chError("list tickets", err)
	}
	return keys, nil
}

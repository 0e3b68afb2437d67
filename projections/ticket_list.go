package projections

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The tables ticket lists read (migration 0007): tickets sorted by
// (workspace_id, created_at_ms, ticket_id), and by (workspace_id,
// customer_id, created_at_ms, ticket_id).
const (
	listTable         = "tickets_by_created"
	customerListTable = "tickets_by_customer"
)

// The created_at windows a list page is first looked for in, newest first.
// Each window is a narrow range of the sorting key, so reading it with
// FINAL merges only the window's rows (on 18.16, a few milliseconds for a
// day of 5,000 tickets against half a second for a million). The first
// window is the day below the page's top. The second reaches as far below
// as the first window's matches suggest the page needs (windowMargin times
// that, at least a day more), or maxWindow when the first had none; at most
// maxWindow.
const (
	firstWindow  = 24 * time.Hour
	maxWindow    = 8 * 24 * time.Hour
	windowMargin = 2
)

// Candidate rounds: the first asks for candidateFactor × the rows still
// needed, each further round candidateGrowth times more; after
// candidateRounds rounds, one FINAL query reads the rest.
const (
	candidateFactor = 2
	candidateGrowth = 4
	candidateRounds = 3
)

// listQuery is a ticket list query: its workspace, page size and filter
// as SQL conditions (joined with AND, "" for none) with their arguments;
// customerID is the customer filter's (uuid.Nil for none).
type listQuery struct {
	workspaceID uuid.UUID
	limit       int
	filter      string
	args        []any
	customerID  uuid.UUID
}

// pageRows returns the latest rows of up to q.limit+1 tickets matching q
// below after (nil: from the newest), newest first: the page and, when
// there is one, the first ticket of the next page. A customer's list reads
// the customer's slice of tickets_by_customer (customerRows); other lists
// find their keys (pageKeys), then read those rows with FINAL by their
// keys, a few granules.
func (r *TicketReader) pageRows(ctx context.Context, q listQuery, after *cursor, now time.Time) ([]ticketRow, error) {
	if q.customerID != uuid.Nil {
		return r.customerRows(ctx, q, after)
	}
	keys, err := r.pageKeys(ctx, q, after, now)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	// A ticket updated since its key was read is shown as it is now.
	where := "workspace_id = toUUID(?) AND " + keysIn(keys)
	return r.rows(ctx, "SELECT "+ticketColumns+" FROM "+listTable+" FINAL WHERE "+where+newestFirst, q.workspaceID.String(), len(keys))
}

// pageKeys returns the keys of up to q.limit+1 tickets matching q below
// after, newest first. It reads only the key and filter columns (FINAL
// over every column costs several times more), in three steps, each only
// when the one before did not fill the page:
//
//  1. Two windows of created_at, with FINAL inside each (a ticket's
//     versions share their key, so FINAL in a range sees all of them). The
//     first ends at the cursor (or includes everything newer than now), the
//     second continues below it (see firstWindow).
//  2. Below the windows, candidates: the newest keys with a row of any
//     version that matches, read without FINAL (no merge, a scan of the
//     filter's columns), then checked with FINAL on those keys only. Every
//     ticket whose latest version matches has that row among the
//     candidates; a candidate whose latest version no longer matches is
//     dropped. A round that finds fewer than needed continues below its
//     last candidate.
//  3. After candidateRounds rounds (candidates that keep failing, such as
//     many updates not merged away yet), one FINAL query over the rest.
func (r *TicketReader) pageKeys(ctx context.Context, q listQuery, after *cursor, now time.Time) ([]cursor, error) {
	need := q.limit + 1
	var keys []cursor
	top := after
	anchor := now.UnixMilli()
	if after != nil {
		anchor = after.createdAtMs
	}
	depth := firstWindow
	for range 2 {
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
		depth = nextWindow(depth, len(found), need-len(keys))
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

// nextWindow is how far below the page's top the second window reaches,
// after a first window reaching depth found found keys and still missing
// missing.
func nextWindow(depth time.Duration, found, missing int) time.Duration {
	if found == 0 {
		return maxWindow
	}
	more := time.Duration(windowMargin * float64(depth) * float64(missing) / float64(found))
	return min(depth+max(more, firstWindow), maxWindow)
}

// customerRows is pageRows for a customer's list: the customer's slice of
// tickets_by_customer with FINAL.
//
// A ticket's customer changes only when a customer merge moves it
// (ticket.customer_changed), and the merged customer keeps no tickets; its
// tickets' older versions stay in its slice, where FINAL does not see their
// newer versions under the target. So the slice of a customer that is not
// merged holds only current rows, and is the answer. For a merged one
// (customers.merged_into), rows that are not their ticket's latest version
// (latestOnly) are dropped, in rounds that continue below; after
// candidateRounds rounds, one FINAL query over the rest of
// tickets_by_created. (While a merge is being projected, a moved ticket can
// show under both customers until the customer's merge is projected too.)
func (r *TicketReader) customerRows(ctx context.Context, q listQuery, after *cursor) ([]ticketRow, error) {
	need := q.limit + 1
	merged, err := r.customerMerged(ctx, q.workspaceID, q.customerID)
	if err != nil {
		return nil, err
	}
	if !merged {
		return r.customerSlice(ctx, q, after, need)
	}
	var rows []ticketRow
	top := after
	want := need
	for range candidateRounds {
		found, err := r.customerSlice(ctx, q, top, want)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return rows, nil
		}
		current, err := r.latestOnly(ctx, q.workspaceID, found)
		if err != nil {
			return nil, err
		}
		rows = append(rows, current[:min(len(current), need-len(rows))]...)
		if len(rows) == need || len(found) < want {
			return rows, nil
		}
		last := found[len(found)-1]
		top = &cursor{createdAtMs: last.CreatedAtMs, ticketID: last.TicketID}
		want *= candidateGrowth
	}
	found, err := r.customerRest(ctx, q, top, need-len(rows))
	if err != nil {
		return nil, err
	}
	return append(rows, found...), nil
}

// customerMerged reports whether the customers table has customerID merged
// into another customer.
func (r *TicketReader) customerMerged(ctx context.Context, workspaceID, customerID uuid.UUID) (bool, error) {
	rows, err := r.conn.Query(ctx, "SELECT merged_into FROM customers FINAL WHERE workspace_id = toUUID(?) AND customer_id = toUUID(?)",
		workspaceID.String(), customerID.String())
	if err != nil {
		return false, chError("list tickets", err)
	}
	defer rows.Close()
	merged := false
	for rows.Next() {
		var into string
		if err := rows.Scan(&into); err != nil {
			return false, chError("list tickets", err)
		}
		merged = into != ""
	}
	if err := rows.Err(); err != nil {
		return false, chError("list tickets", err)
	}
	return merged, nil
}

// customerRest returns the rows of the newest n tickets of tickets_by_created
// that match q below top, with FINAL over every column.
func (r *TicketReader) customerRest(ctx context.Context, q listQuery, top *cursor, n int) ([]ticketRow, error) {
	where, args := rangeConditions(q, top, noLowerBound)
	return r.rows(ctx, "SELECT "+ticketColumns+" FROM "+listTable+" FINAL WHERE "+where+newestFirst, append(args, n)...)
}

// noLowerBound is the from of rangeConditions for "no lower bound".
const noLowerBound = int64(-1 << 63)

// rangeConditions are the conditions of q's workspace, created_at_ms >=
// from and the keys below top (nil: no upper bound), then q's filter, and
// their arguments.
func rangeConditions(q listQuery, top *cursor, from int64) (string, []any) {
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
	return strings.Join(where, " AND "), args
}

// newestFirst ends the list's queries: newest first, at most ? rows, and
// ClickHouse's uncompressed block cache on. A list query reads a few
// granules of many columns in each part, so decompressing the blocks
// around them is most of its work; the newest tickets are read over and
// over, and the cache keeps their blocks (queries that read many rows do
// not use it: merge_tree_max_rows_to_use_cache).
const newestFirst = " ORDER BY created_at_ms DESC, ticket_id DESC LIMIT ?" + useCache

const useCache = " SETTINGS use_uncompressed_cache = 1"

// customerSlice returns the rows of the newest n tickets of q's customer in
// tickets_by_customer that match q below top, newest first (FINAL: the
// latest version of each ticket under that customer decides).
func (r *TicketReader) customerSlice(ctx context.Context, q listQuery, top *cursor, n int) ([]ticketRow, error) {
	where, args := rangeConditions(q, top, noLowerBound)
	return r.rows(ctx, "SELECT "+ticketColumns+" FROM "+customerListTable+" FINAL WHERE "+where+newestFirst, append(args, n)...)
}

// queryKeys returns the keys of the newest n rows of tickets_by_created
// that match q in the range of rangeConditions, newest first. final is
// "FINAL" (the latest version of each ticket decides; one key per ticket)
// or "" (any version; a ticket with several matching versions not merged
// yet comes once per version).
func (r *TicketReader) queryKeys(ctx context.Context, q listQuery, top *cursor, from int64, final string, n int) ([]cursor, error) {
	where, args := rangeConditions(q, top, from)
	return r.keys(ctx, "SELECT created_at_ms, ticket_id FROM "+listTable+" "+final+" WHERE "+where+newestFirst, append(args, n)...)
}

// checkKeys returns those of keys (newest first, distinct) whose latest
// version matches q's filter, at most n, newest first.
func (r *TicketReader) checkKeys(ctx context.Context, q listQuery, keys []cursor, n int) ([]cursor, error) {
	where := "workspace_id = toUUID(?) AND " + keysIn(keys)
	args := []any{q.workspaceID.String()}
	if q.filter != "" {
		where, args = where+" AND "+q.filter, append(args, q.args...)
	}
	return r.keys(ctx, "SELECT created_at_ms, ticket_id FROM "+listTable+" FINAL WHERE "+where+newestFirst, append(args, n)...)
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

// latestOnly returns those of rows (newest first) that are their ticket's
// latest version in tickets_by_created, in order. It reads the versions of
// the rows' tickets by their keys, without FINAL: a read of three narrow
// columns in a few granules.
func (r *TicketReader) latestOnly(ctx context.Context, workspaceID uuid.UUID, rows []ticketRow) ([]ticketRow, error) {
	keys := make([]cursor, len(rows))
	for i := range rows {
		keys[i] = cursor{createdAtMs: rows[i].CreatedAtMs, ticketID: rows[i].TicketID}
	}
	res, err := r.conn.Query(ctx, "SELECT ticket_id, max(version) FROM "+listTable+" WHERE workspace_id = toUUID(?) AND "+keysIn(keys)+
		" GROUP BY ticket_id"+useCache, workspaceID.String())
	if err != nil {
		return nil, chError("list tickets", err)
	}
	defer res.Close()
	latest := make(map[uuid.UUID]uint64, len(rows))
	for res.Next() {
		var id uuid.UUID
		var version uint64
		if err := res.Scan(&id, &version); err != nil {
			return nil, chError("list tickets", err)
		}
		latest[id] = version
	}
	if err := res.Err(); err != nil {
		return nil, chError("list tickets", err)
	}
	out := rows[:0:0]
	for _, row := range rows {
		// A version above the latest there is one the view has not
		// written to tickets_by_created yet: the newest known.
		if row.Version >= latest[row.TicketID] {
			out = append(out, row)
		}
	}
	return out, nil
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

// rows runs a query that selects ticketColumns, in its order.
func (r *TicketReader) rows(ctx context.Context, query string, args ...any) ([]ticketRow, error) {
	res, err := r.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, chError("list tickets", err)
	}
	defer res.Close()
	var rows []ticketRow
	for res.Next() {
		var row ticketRow
		if err := res.Scan(row.scanDest()...); err != nil {
			return nil, chError("list tickets", err)
		}
		rows = append(rows, row)
	}
	if err := res.Err(); err != nil {
		return nil, chError("list tickets", err)
	}
	return rows, nil
}

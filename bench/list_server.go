package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	nethttp "net/http"
	"net/url"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/projections"
)

// listServerRequests is how many requests of each kind listServerTime
// sends.
const listServerRequests = 40

// kindServerTime is ClickHouse's own time for one kind of list request:
// the sum over the request's queries (query_duration_ms of query_log).
type kindServerTime struct {
	Kind              string         `json:"kind"`
	Requests          int            `json:"requests"`
	QueriesPerRequest float64        `json:"clickhouse_queries_per_request"`
	Ms                latencySummary `json:"clickhouse_ms_per_request"`
	ReadRowsP50       float64        `json:"read_rows_per_request_p50"`
}

// deepPage returns q with the cursor of its page number page, found by
// walking the pages before it.
func deepPage(ctx context.Context, client *nethttp.Client, base, key string, q url.Values, page int) (url.Values, error) {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	for i := 1; i < page; i++ {
		u := base
		if len(out) > 0 {
			u += "?" + out.Encode()
		}
		raw, _, err := get(ctx, client, u, key, true)
		if err != nil {
			return nil, fmt.Errorf("walk to page %d of %q: page %d: %w", page, q.Encode(), i, err)
		}
		var p struct {
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("walk to page %d of %q: page %d: %w", page, q.Encode(), i, err)
		}
		if p.NextCursor == nil {
			return nil, fmt.Errorf("walk to page %d of %q: page %d is the last", page, q.Encode(), i)
		}
		out.Set("cursor", *p.NextCursor)
	}
	return out, nil
}

// listServerTime sends listServerRequests requests of each kind, one at a
// time, through a projections.TicketReader of the bench's own on the
// run's database, each query with an id naming its request and
// log_queries on, and
// reads from system.query_log how long ClickHouse spent on each request's
// queries: the server time by kind, without HTTP or the load's queueing.
func (b *bench) listServerTime(ctx context.Context, ws uuid.UUID, seed listSeed) ([]kindServerTime, error) {
	opts := *b.chOpts
	opts.Auth.Database = b.chDB
	conn, err := openClickHouse(ctx, &opts)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	tagged := &taggedConn{Conn: conn}
	reader := projections.NewTicketReader(tagged)
	r := rand.New(rand.NewPCG(7, 16))
	run := fmt.Sprintf("bench-list-%d", time.Now().UnixNano())
	idsByKind := map[string][]string{}
	for _, kind := range listKinds {
		for i := range listServerRequests {
			q := listQueryOf(kind, r, seed)
			if kind == kindNextPage {
				// Page 2 of a no-filter walk; page 1 is not measured.
				first, err := reader.ListTickets(ctx, ws, projections.TicketFilter{})
				if err != nil {
					return nil, fmt.Errorf("%s: %w", kind, err)
				}
				q.Set("cursor", first.NextCursor)
			}
			f, err := ticketFilterOf(q)
			if err != nil {
				return nil, err
			}
			id := fmt.Sprintf("%s-%d-%d-", run, len(idsByKind), i)
			qctx, cancel := context.WithTimeout(ctx, time.Minute)
			tagged.prefix = id
			_, err = reader.ListTickets(qctx, ws, f)
			tagged.prefix = ""
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", kind, err)
			}
			idsByKind[kind] = append(idsByKind[kind], id)
		}
	}
	if err := conn.Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		return nil, fmt.Errorf("flush the query log: %w", err)
	}
	var out []kindServerTime
	for _, kind := range listKinds {
		st := kindServerTime{Kind: kind, Requests: len(idsByKind[kind])}
		var durations []time.Duration
		var rowsRead []uint64
		queries := 0
		for _, id := range idsByKind[kind] {
			var n, ms, rows uint64
			err := conn.QueryRow(ctx, "SELECT count(), sum(query_duration_ms), sum(read_rows) FROM system.query_log WHERE startsWith(query_id, ?) AND type = 2", id).
				Scan(&n, &ms, &rows)
			if err != nil {
				return nil, fmt.Errorf("read the query log: %w", err)
			}
			queries += int(n)
			durations = append(durations, time.Duration(ms)*time.Millisecond)
			rowsRead = append(rowsRead, rows)
		}
		if st.Requests > 0 {
			st.QueriesPerRequest = round1(float64(queries) / float64(st.Requests))
			st.Ms = summarize(durations)
			slices.Sort(rowsRead)
			st.ReadRowsP50 = float64(rowsRead[len(rowsRead)/2])
		}
		out = append(out, st)
	}
	return out, nil
}

// taggedConn gives each query, while prefix is set, the query id prefix
// followed by a number, and turns log_queries on for it, so that
// system.query_log tells a request's queries apart. One request at a time.
type taggedConn struct {
	driver.Conn
	prefix string
	n      int
}

// Query runs the query with its id and log_queries set.
func (c *taggedConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	if c.prefix != "" {
		c.n++
		ctx = clickhouse.Context(ctx, clickhouse.WithQueryID(fmt.Sprintf("%s%d", c.prefix, c.n)),
			clickhouse.WithSettings(clickhouse.Settings{"log_queries": 1}))
	}
	return c.Conn.Query(ctx, query, args...)
}

// ticketFilterOf reads a list query string as the API does, for the
// fields the bench sends.
func ticketFilterOf(q url.Values) (projections.TicketFilter, error) {
	f := projections.TicketFilter{Status: q.Get("status"), Priority: q.Get("priority"), Tag: q.Get("tag"), Team: q.Get("team"), Cursor: q.Get("cursor")}
	if v := q.Get("customer_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, fmt.Errorf("customer_id %q: %w", v, err)
		}
		f.CustomerID = id
	}
	if v := q.Get("updated_after"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return f, fmt.Errorf("updated_after %q: %w", v, err)
		}
		f.UpdatedAfter = t
	}
	return f, nil
}

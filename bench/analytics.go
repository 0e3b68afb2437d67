package main

import (
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// The analytics phase's history: a Postgres event store and the ClickHouse
// database projected from it, both kept across runs (checked by count)
// because seeding and projecting a million tickets takes minutes. Their
// names carry the seed's version: change the seed, bump it.
const (
	analyticsStoreDB      = "bench_analytics_store_v1"
	analyticsCHDB         = "bench_analytics_v1"
	analyticsTickets      = 1_000_000
	analyticsCustomers    = 200_000
	analyticsTicketEvents = 7 // per ticket: created, SLA policy, open, agent reply, SLA point or customer reply, solved, reopen or tag update
	analyticsEvents       = analyticsCustomers + analyticsTickets*analyticsTicketEvents
	analyticsAPIRequests  = 2_000_000 // inserted into api_requests directly: the request log is not built from events
	analyticsRuns         = 3
	analyticsDoc          = "docs/analytics.md"
)

// The seeded history: tickets spread over 12 weeks from analyticsStart, in
// 10 workspaces; the queries run for workspace 0 over the whole range.
var (
	analyticsStart = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	analyticsEnd   = analyticsStart.Add(12 * 7 * 24 * time.Hour)
)

// analyticsResult is the analytics phase.
type analyticsResult struct {
	StoreDatabase  string           `json:"store_database"`
	CHDatabase     string           `json:"clickhouse_database"`
	Events         int64            `json:"events"`
	Tickets        int              `json:"tickets"`
	SeedReused     bool             `json:"seed_reused"`
	SeedSeconds    float64          `json:"seed_seconds"`
	ProjectReused  bool             `json:"projection_reused"`
	ProjectSeconds float64          `json:"project_seconds"`
	Rows           map[string]int64 `json:"rows"`
	Queries        []analyticsQuery `json:"queries"`
	Error          string           `json:"error,omitempty"`
}

// analyticsQuery is one query of docs/analytics.md and its times.
type analyticsQuery struct {
	Name     string    `json:"name"`
	Rows     int       `json:"rows"`
	Seconds  []float64 `json:"seconds"`
	MedianMs float64   `json:"median_ms"`
	Error    string    `json:"error,omitempty"`
}

// runAnalytics is the analytics phase: every query of docs/analytics.md,
// run analyticsRuns times on the projection of a seeded million-ticket
// history, its median time reported.
func (b *bench) runAnalytics(ctx context.Context) error {
	res := &analyticsResult{StoreDatabase: analyticsStoreDB, CHDatabase: analyticsCHDB, Tickets: analyticsTickets}
	b.res.Analytics = res
	if err := b.analytics(ctx, res); err != nil {
		res.Error = err.Error()
		b.res.note("analytics phase: %v", err)
	}
	return ctx.Err()
}

func (b *bench) analytics(ctx context.Context, res *analyticsResult) error {
	start := time.Now()
	storeURL, reused, err := seedStore(ctx, b.cfg.postgresURL, analyticsStoreDB, analyticsEvents, analyticsSeedSQL())
	if err != nil {
		return err
	}
	res.SeedReused, res.SeedSeconds = reused, round3(time.Since(start).Seconds())

	conn, err := projections.OpenClickHouse(ctx, b.chOpts.Addr[0], analyticsCHDB)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := projections.Migrate(ctx, conn); err != nil {
		return err
	}
	if err := b.projectAnalytics(ctx, conn, storeURL, res); err != nil {
		return err
	}
	res.Rows = map[string]int64{}
	for _, table := range []string{"tickets", "customers", "audit_log", "ticket_history", "automation_firings", "api_requests"} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n); err != nil {
			return err
		}
		res.Rows[table] = int64(n)
	}
	// Read after the (long) seeding and projection, so that the queries
	// are the document's as it is now.
	queries, err := readAnalyticsQueries(analyticsDoc)
	if err != nil {
		return err
	}
	wsID, ticketID := md5UUID("ws0"), md5UUID("t0") // the seed's workspace 0 and its ticket 0
	for _, q := range queries {
		sql := substituteAnalytics(q.sql, map[string]string{
			"workspace": "toUUID('" + wsID + "')", "ticket": "toUUID('" + ticketID + "')",
			"from": "toDate('" + analyticsStart.Format("2006-01-02") + "')", "to": "toDate('" + analyticsEnd.Format("2006-01-02") + "')",
		})
		aq := analyticsQuery{Name: q.name}
		for range analyticsRuns {
			t0 := time.Now()
			n, err := countRows(ctx, conn, sql)
			if err != nil {
				aq.Error = err.Error()
				break
			}
			aq.Seconds = append(aq.Seconds, round3(time.Since(t0).Seconds()))
			aq.Rows = n
		}
		if len(aq.Seconds) > 0 {
			s := slices.Clone(aq.Seconds)
			slices.Sort(s)
			aq.MedianMs = round1(s[len(s)/2] * 1000)
		}
		logf("analytics: %s: median %.0f ms (%d rows) %s", aq.Name, aq.MedianMs, aq.Rows, aq.Error)
		res.Queries = append(res.Queries, aq)
	}
	return nil
}

// projectAnalytics projects the store into conn's database with the
// projector's fold (projections.Rebuild), unless a previous run did: the
// database is reused when ticket_history holds every ticket event.
func (b *bench) projectAnalytics(ctx context.Context, conn driver.Conn, storeURL string, res *analyticsResult) error {
	var have uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM ticket_history").Scan(&have); err != nil {
		return err
	}
	var requests uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM api_requests").Scan(&requests); err != nil {
		return err
	}
	res.Events = analyticsEvents
	if have == analyticsTickets*analyticsTicketEvents && requests == analyticsAPIRequests {
		res.ProjectReused = true
		logf("analytics: reusing the projected ClickHouse database %s (%d ticket events)", analyticsCHDB, have)
		return nil
	}
	// What an earlier, incomplete run left is dropped: the projection
	// starts over on an empty database (a rebuild resumed from its
	// checkpoint reads every ticket's state back, which on this history
	// is slower than starting over).
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+analyticsCHDB); err != nil {
		return err
	}
	if err := conn.Exec(ctx, "CREATE DATABASE "+analyticsCHDB); err != nil {
		return err
	}
	if err := projections.Migrate(ctx, conn); err != nil {
		return err
	}
	db, err := pg.Connect(ctx, storeURL, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := eventstore.New(db, nil)
	if err != nil {
		return err
	}
	defer debug.SetGCPercent(debug.SetGCPercent(projections.RebuildGCPercent)) // as the rebuild command
	logf("analytics: projecting %d events from %s into ClickHouse %s", analyticsEvents, analyticsStoreDB, analyticsCHDB)
	start := time.Now()
	// A rebuild that loses ClickHouse (the machine is shared and a
	// ClickHouse busy merging millions of rows can stop answering for a
	// while) continues from its checkpoint when run again.
	var report projections.RebuildReport
	for attempt := 1; ; attempt++ {
		report, err = projections.Rebuild(ctx, projections.RebuildConfig{ClickHouse: conn, Events: store, DropOld: true})
		if err == nil {
			break
		}
		if helpdeskflow.ErrorCode(err) != helpdeskflow.EUnavailable || attempt == 5 || ctx.Err() != nil {
			return err
		}
		logf("analytics: projection interrupted (%v); continuing from its checkpoint in 10 s", err)
		time.Sleep(10 * time.Second)
	}
	// The request log: two million requests of 10 keys over the 12 weeks,
	// every 20th an error.
	err = conn.Exec(ctx, fmt.Sprintf(`INSERT INTO api_requests (time, time_ms, request_id, workspace_id, key_id, key_prefix, method, route, path,
		status, latency_us, client_ip, user_agent, error_code, rate_limit_category)
		SELECT toDateTime(%d + intDiv(number * %d, %d)), toUInt16(number %% 1000), concat('req_', toString(number)),
			%s, %s,
			'hdf_live_x', if(number %% 3 = 0, 'POST', 'GET'), '/v1/tickets', '/v1/tickets', if(number %% 20 = 0, 422, 200),
			toUInt64(1000 + number %% 5000), '127.0.0.1', 'bench', if(number %% 20 = 0, 'validation_failed', ''), 'write'
		FROM numbers(%d)`, analyticsStart.Unix(), int64(analyticsEnd.Sub(analyticsStart).Seconds()), analyticsAPIRequests,
		chMD5UUID("concat('ws', toString(number % 10))"), chMD5UUID("concat('key', toString(number % 20))"), analyticsAPIRequests))
	if err != nil {
		return fmt.Errorf("insert api_requests: %w", err)
	}
	res.ProjectSeconds = round3(time.Since(start).Seconds())
	logf("analytics: projected %d events in %.0f s; rows %v", report.Events, res.ProjectSeconds, report.Inserted)
	waitMerges(ctx, conn, analyticsCHDB, 5*time.Minute)
	return nil
}

// md5UUID is Postgres' md5(text)::uuid.
func md5UUID(text string) string {
	h := fmt.Sprintf("%x", md5.Sum([]byte(text)))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// chMD5UUID is md5UUID of the ClickHouse expression text.
func chMD5UUID(text string) string {
	h := "lower(hex(MD5(" + text + ")))"
	return "toUUID(concat(substring(" + h + ", 1, 8), '-', substring(" + h + ", 9, 4), '-', substring(" + h + ", 13, 4), '-', substring(" +
		h + ", 17, 4), '-', substring(" + h + ", 21, 12)))"
}

// countRows runs query and reads every row, returning how many.
func countRows(ctx context.Context, conn driver.Conn, query string) (int, error) {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// docQuery is one sql block of docs/analytics.md and the name of the
// paragraph before it ("Query `name`: …").
type docQuery struct{ name, sql string }

var docQueryPattern = regexp.MustCompile("(?ms)^Query `([a-z0-9_]+)`.*?^```sql\n(.*?)^```")

// readAnalyticsQueries reads the named queries of the document at path.
func readAnalyticsQueries(path string) ([]docQuery, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []docQuery
	for _, m := range docQueryPattern.FindAllStringSubmatch(string(doc), -1) {
		out = append(out, docQuery{name: m[1], sql: m[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no named queries", path)
	}
	return out, nil
}

// substituteAnalytics replaces the document's parameters ({name:Type}) by
// the values given by name.
func substituteAnalytics(sql string, values map[string]string) string {
	return regexp.MustCompile(`\{([a-z_]+):[A-Za-z0-9()]+\}`).ReplaceAllStringFunc(sql, func(p string) string {
		name := p[1:strings.Index(p, ":")]
		if v, ok := values[name]; ok {
			return v
		}
		return p
	})
}

// analyticsSeedSQL seeds analyticsCustomers customers and analyticsTickets
// tickets in 10 workspaces, created one every ~7 s over 12 weeks from
// analyticsStart, each with analyticsTicketEvents events the commands
// would write: created (channel, priority, team by i), SLA policy applied
// (one of three policies), opened and assigned (by a rule for every 5th
// ticket), an agent's reply after 10 to 190 minutes, an SLA warning (every
// 7th) or breach (every 11th) or a customer's reply, solved after 1 to 48
// hours, and reopened (every 10th) or retagged. One transaction per
// statement, rounds of versions in commit order.
func analyticsSeedSQL() []string {
	ws := "md5('ws' || (i % 10))::uuid"
	md := func(request string) string {
		return "jsonb_build_object('actor', jsonb_build_object('type', 'api_key', 'id', md5('key' || (i % 20))::uuid::text), " +
			"'channel', 'api', 'request_id', " + request + ")"
	}
	ruleMD := "jsonb_build_object('actor', jsonb_build_object('type', 'rule', 'id', md5('rule' || (i % 3))::uuid::text), " +
		"'channel', 'automation', 'rule_id', md5('rule' || (i % 3))::uuid::text, 'request_id', 'req_t' || i || '_3', 'causation_id', md5('te' || i || '-1')::uuid::text)"
	created := fmt.Sprintf("timestamptz '%s' + i * interval '%d millisecond'", analyticsStart.Format(time.RFC3339),
		analyticsEnd.Sub(analyticsStart).Milliseconds()/analyticsTickets)
	offset := `CASE v WHEN 1 THEN interval '0' WHEN 2 THEN interval '1 second' WHEN 3 THEN interval '2 minute'
		WHEN 4 THEN interval '10 minute' + (i % 180) * interval '1 minute'
		WHEN 5 THEN interval '4 hour' WHEN 6 THEN interval '5 hour' + (i % 44) * interval '1 hour'
		ELSE interval '50 hour' END`
	return []string{
		"SET synchronous_commit = off",
		fmt.Sprintf(`INSERT INTO streams (id, workspace_id, type, version)
			SELECT md5('c' || i)::uuid, %s, 'customer', 1 FROM generate_series(0, %d) i`, ws, analyticsCustomers-1),
		fmt.Sprintf(`INSERT INTO streams (id, workspace_id, type, version)
			SELECT md5('t' || i)::uuid, %s, 'ticket', %d FROM generate_series(0, %d) i`, ws, analyticsTicketEvents, analyticsTickets-1),
		fmt.Sprintf(`INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata, occurred_at)
			SELECT md5('ce' || i)::uuid, md5('c' || i)::uuid, 'customer', 1, %s, 'customer.created', %d,
				json_build_object('email', 'customer' || i || '@example.test', 'name', 'Customer ' || i, 'tags', json_build_array('vip')),
				%s, timestamptz '%s' - interval '1 day'
			FROM generate_series(0, %d) i ORDER BY i`, ws, helpdeskflow.CurrentEventSchemaVersion, md("'req_c' || i"),
			analyticsStart.Format(time.RFC3339), analyticsCustomers-1),
		// Ticket i belongs to customer i % analyticsCustomers in the same
		// workspace (both are i % 10).
		fmt.Sprintf(`INSERT INTO events (id, stream_id, stream_type, version, workspace_id, type, schema_version, data, metadata, occurred_at)
			SELECT md5('te' || i || '-' || v)::uuid, md5('t' || i)::uuid, 'ticket', v, %s,
				CASE WHEN v = 1 THEN 'ticket.created' WHEN v = 2 THEN 'ticket.sla_policy_applied'
					WHEN v = 3 OR v = 6 OR v = 7 THEN 'ticket.updated' WHEN v = 4 THEN 'ticket.message_added'
					WHEN i %% 7 = 0 THEN 'ticket.sla_warning' WHEN i %% 11 = 0 THEN 'ticket.sla_breached' ELSE 'ticket.message_added' END, %d,
				CASE WHEN v = 1 THEN json_build_object('subject', 'Order ' || i || ' has not arrived', 'status', 'new',
						'priority', (ARRAY['low','normal','high','urgent'])[1 + i %% 4], 'type', 'question',
						'channel', (ARRAY['email','api','web','chat','phone'])[1 + i %% 5],
						'tags', json_build_array((ARRAY['billing','shipping','refund','login','bug','order','vip'])[1 + i %% 7], 'order'),
						'customer_id', md5('c' || (i %% %d))::uuid, 'team', (ARRAY['tier1','tier2','billing'])[1 + i %% 3],
						'message', json_build_object('id', md5('m' || i || '-1')::uuid, 'author_type', 'customer',
							'body', '<p>Where is my order ' || i || '?</p>', 'body_text', 'Where is my order ' || i || '?'))
					WHEN v = 2 THEN json_build_object('policy_id', md5('policy' || (i %% 3))::uuid, 'policy_version', 1,
						'policy_name', (ARRAY['Standard','Premium','Enterprise'])[1 + i %% 3],
						'first_response', json_build_object('minutes', 60 * (1 + i %% 3), 'warn_before_minutes', 10),
						'resolution', json_build_object('minutes', 480 * (1 + i %% 3), 'warn_before_minutes', 60))
					WHEN v = 3 THEN json_build_object('status', json_build_object('old', 'new', 'new', 'open'),
						'assignee_id', json_build_object('old', NULL, 'new', 'agent-' || (i %% 25)))
					WHEN v = 4 THEN json_build_object('id', md5('m' || i || '-4')::uuid, 'author_type', 'agent',
						'body', '<p>We are on it.</p>', 'body_text', 'We are on it.', 'internal', false)
					WHEN v = 5 AND (i %% 7 = 0 OR i %% 11 = 0) THEN json_build_object('target', 'resolution',
						'due_at', to_char((%s + interval '4 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
					WHEN v = 5 THEN json_build_object('id', md5('m' || i || '-5')::uuid, 'author_type', 'customer',
						'body', '<p>Thanks</p>', 'body_text', 'Thanks', 'internal', false)
					WHEN v = 6 THEN '{"status":{"old":"open","new":"solved"}}'::json
					WHEN i %% 10 = 0 THEN '{"status":{"old":"solved","new":"open"}}'::json
					ELSE '{"tags":{"old":["order"],"new":["order","done"]}}'::json END,
				CASE WHEN v = 3 AND i %% 5 = 0 THEN %s ELSE %s END,
				%s + %s
			FROM generate_series(1, %d) v, generate_series(0, %d) i ORDER BY v, i`,
			ws, helpdeskflow.CurrentEventSchemaVersion, analyticsCustomers, created, ruleMD, md("'req_t' || i || '_' || v"),
			created, offset, analyticsTicketEvents, analyticsTickets-1),
		"ANALYZE events",
		"CREATE TABLE bench_seed (events bigint NOT NULL)",
		fmt.Sprintf("INSERT INTO bench_seed VALUES (%d)", analyticsEvents),
	}
}

package projections_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
	"github.com/helpdeskflow/helpdeskflow/commands/automation"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// analyticsDoc is the analysts' guide whose every sql block the test runs.
const analyticsDoc = "../docs/analytics.md"

// docQuery is one sql block of the guide, the name on the paragraph
// before it ("Query `name`: …") and the "## " section it is in.
type docQuery struct{ name, sql, section string }

// factsSection is the guide's section whose queries
// TestServiceFacts_DocQueriesOnRealDeliveriesAndSyncs runs (on webhook
// attempts and mailbox syncs); TestAnalyticsQueries runs the others.
const factsSection = "Delivery and mailbox facts"

var (
	sqlBlock   = regexp.MustCompile("(?m)^```sql\n")
	namedQuery = regexp.MustCompile("(?ms)^Query `([a-z0-9_]+)`.*?^```sql\n(.*?)^```")
	parameter  = regexp.MustCompile(`\{([a-z_]+):([A-Za-z0-9]+)\}`)
	heading    = regexp.MustCompile("(?m)^## (.+)$")
)

// readDocQueries returns the guide's queries, failing the test when an
// sql block has no name of its own or a name comes twice.
func readDocQueries(t *testing.T) []docQuery {
	t.Helper()
	doc, err := os.ReadFile(analyticsDoc)
	if err != nil {
		t.Fatal(err)
	}
	var out []docQuery
	seen := map[string]bool{}
	headings := heading.FindAllStringSubmatchIndex(string(doc), -1)
	for _, m := range namedQuery.FindAllStringSubmatchIndex(string(doc), -1) {
		name, sql := string(doc[m[2]:m[3]]), string(doc[m[4]:m[5]])
		if seen[name] {
			t.Errorf("%s: query %q comes twice", analyticsDoc, name)
		}
		seen[name] = true
		section := ""
		for _, h := range headings {
			if h[0] < m[0] {
				section = string(doc[h[2]:h[3]])
			}
		}
		out = append(out, docQuery{name: name, sql: sql, section: section})
	}
	if blocks := len(sqlBlock.FindAllString(string(doc), -1)); blocks != len(out) {
		t.Fatalf("%s has %d sql blocks but %d named ones: give each its own \"Query `name`: …\" paragraph", analyticsDoc, blocks, len(out))
	}
	return out
}

// analyticsWorld is the history the test made happen, kept as the test's
// own model to check the queries against.
type analyticsWorld struct {
	t         *testing.T
	ctx       context.Context
	cmd       *testenv.Commands
	clock     *testenv.Clock
	start     time.Time // Monday 2026-03-02 00:00 UTC
	workspace uuid.UUID
	rule      uuid.UUID
	tickets   map[string]*modelTicket
	order     []string
}

// modelTicket is what the test knows of one ticket.
type modelTicket struct {
	name       string
	id         uuid.UUID
	customer   uuid.UUID
	email      string
	channel    string
	priority   string
	team       string
	tags       []string
	created    time.Time
	changes    []statusChange // the first is the creation
	reply      time.Time      // first public agent reply
	policy     string
	warned     bool
	breached   bool
	lastSolved time.Time
	reopens    int
	events     int64 // its stream's version
}

type statusChange struct {
	at     time.Time
	status string
}

var (
	apiMD   = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: "key-1"}, Channel: helpdeskflow.ChannelAPI, RequestID: "req-api"}
	agentMD = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAgent, ID: "agent-7"}, Channel: helpdeskflow.ChannelAgent}
)

// at moves the clock to the given day (0 = start) and time of day.
func (w *analyticsWorld) at(day, hour, minute int) {
	w.t.Helper()
	to := w.start.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
	if to.Before(w.clock.Now()) {
		w.t.Fatalf("the scenario goes back in time to %v", to)
	}
	w.clock.Advance(to.Sub(w.clock.Now()))
}

// observe records what a command left the ticket as.
func (w *analyticsWorld) observe(m *modelTicket, tk helpdeskflow.Ticket) {
	now := w.clock.Now()
	if last := m.changes[len(m.changes)-1].status; tk.Status != last {
		if last == helpdeskflow.StatusSolved && tk.Status == helpdeskflow.StatusOpen {
			m.reopens++
		}
		if tk.Status == helpdeskflow.StatusSolved {
			m.lastSolved = now
		}
		m.changes = append(m.changes, statusChange{now, tk.Status})
	}
	m.team, m.tags, m.priority, m.events = deref(tk.Team), slices.Clone(tk.Tags), tk.Priority, tk.Version
	if tk.SLA != nil {
		m.policy = tk.SLA.PolicyName
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (w *analyticsWorld) create(name, email, subject, priority string, md helpdeskflow.Metadata, tags ...string) *modelTicket {
	w.t.Helper()
	tk, err := w.cmd.Tickets.CreateTicket(w.ctx, w.workspace, md, tickets.CreateTicket{Subject: subject, Priority: priority, Tags: tags,
		Customer: tickets.CustomerRef{Email: email}, Message: tickets.NewTicketMessage{Body: "<p>" + subject + "</p>"}})
	if err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
	m := &modelTicket{name: name, id: tk.ID, customer: tk.CustomerID, email: email, channel: md.Channel, created: w.clock.Now(),
		changes: []statusChange{{w.clock.Now(), tk.Status}}}
	w.observe(m, tk)
	w.tickets[name] = m
	w.order = append(w.order, name)
	return m
}

func (w *analyticsWorld) update(m *modelTicket, md helpdeskflow.Metadata, u tickets.UpdateTicket) {
	w.t.Helper()
	tk, err := w.cmd.Tickets.UpdateTicket(w.ctx, w.workspace, md, m.id, nil, u, true)
	if err != nil {
		w.t.Fatalf("update %s: %v", m.name, err)
	}
	w.observe(m, tk)
}

func (w *analyticsWorld) status(m *modelTicket, status string) {
	w.t.Helper()
	w.update(m, apiMD, tickets.UpdateTicket{Status: &status})
}

func (w *analyticsWorld) message(m *modelTicket, author string, internal bool) {
	w.t.Helper()
	md := apiMD
	if author == helpdeskflow.AuthorAgent {
		md = agentMD
	}
	tk, err := w.cmd.Tickets.AddMessage(w.ctx, w.workspace, md, m.id, nil, tickets.AddMessage{Body: "<p>reply</p>", AuthorType: author, Internal: internal}, true)
	if err != nil {
		w.t.Fatalf("message on %s: %v", m.name, err)
	}
	if author == helpdeskflow.AuthorAgent && !internal && m.reply.IsZero() {
		m.reply = w.clock.Now()
	}
	w.observe(m, tk)
}

// checkSLA runs the SLA timers' command and records what it appended.
func (w *analyticsWorld) checkSLA(m *modelTicket) {
	w.t.Helper()
	if err := w.cmd.Tickets.CheckSLA(w.ctx, w.workspace, m.id); err != nil {
		w.t.Fatalf("CheckSLA %s: %v", m.name, err)
	}
	tk, err := w.cmd.Tickets.GetTicket(w.ctx, w.workspace, m.id, true)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, c := range []*helpdeskflow.SLAClock{tk.SLA.FirstResponse, tk.SLA.Resolution} {
		if c != nil && c.WarnedAt != nil {
			m.warned = true
		}
		if c != nil && c.BreachedAt != nil {
			m.breached = true
		}
	}
	w.observe(m, tk)
}

// makeHistory makes three weeks of a help desk happen through the
// commands: six tickets on three channels, two SLA policies, an
// automation rule, replies, warnings and breaches, a pending spell, a
// reopen, a close, a customer's linked profiles.
func makeHistory(t *testing.T, w *analyticsWorld) {
	ctx, md := w.ctx, testenv.SystemMetadata
	ws, _, err := w.cmd.Access.CreateWorkspace(ctx, md, "analytics")
	if err != nil {
		t.Fatal(err)
	}
	w.workspace = ws
	priorityIs := func(p string) automation.Conditions {
		return automation.Conditions{All: []automation.Condition{{Field: "ticket.priority", Operator: "is", Value: p}}}
	}
	if _, err := w.cmd.Rules.CreateSLAPolicy(ctx, ws, md, rules.SLAPolicyWrite{Name: "Urgent", Conditions: priorityIs("urgent"),
		FirstResponse: &helpdeskflow.SLATargetSpec{Minutes: 60, WarnBeforeMinutes: 10},
		Resolution:    &helpdeskflow.SLATargetSpec{Minutes: 240, WarnBeforeMinutes: 30}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.cmd.Rules.CreateSLAPolicy(ctx, ws, md, rules.SLAPolicyWrite{Name: "Standard", Conditions: priorityIs("normal"),
		FirstResponse: &helpdeskflow.SLATargetSpec{Minutes: 480, WarnBeforeMinutes: 60},
		Resolution:    &helpdeskflow.SLATargetSpec{Minutes: 2880, WarnBeforeMinutes: 120}}); err != nil {
		t.Fatal(err)
	}
	rule, err := w.cmd.Rules.CreateAutomation(ctx, ws, md, rules.AutomationRule{Name: "Route refunds",
		Conditions: automation.Conditions{All: []automation.Condition{
			{Field: "event.type", Operator: "is", Value: helpdeskflow.EventTicketCreated},
			{Field: "ticket.subject", Operator: "contains", Value: "refund"}}},
		Actions: []automation.Action{{Type: "assign_team", Value: "billing"}, {Type: "add_tags", Value: []any{"auto-refund"}}}})
	if err != nil {
		t.Fatal(err)
	}
	w.rule = rule.ID
	team := func(name string) tickets.UpdateTicket {
		return tickets.UpdateTicket{Team: commands.Nullable[string]{Set: true, Value: &name}}
	}

	// Week 1.
	w.at(0, 8, 0)
	t1 := w.create("T1", "alice@example.com", "Refund for order 1", "urgent", apiMD, "order")
	w.at(0, 8, 25)
	agent := "agent-7"
	w.update(t1, agentMD, tickets.UpdateTicket{AssigneeID: commands.Nullable[string]{Set: true, Value: &agent}})
	w.at(0, 8, 30)
	w.message(t1, helpdeskflow.AuthorAgent, false)
	w.at(0, 9, 0)
	t2 := w.create("T2", "bob@example.com", "Cannot log in", "normal", agentMD, "login")
	w.update(t2, apiMD, team("tier1"))
	w.at(0, 10, 0)
	w.status(t1, helpdeskflow.StatusSolved)
	w.at(0, 13, 0)
	w.message(t2, helpdeskflow.AuthorAgent, false)
	w.at(1, 8, 0)
	t3 := w.create("T3", "carol@example.com", "App crashes", "urgent", apiMD, "bug")
	w.update(t3, apiMD, team("tier2"))
	w.at(1, 8, 55)
	w.checkSLA(t3) // first response warning
	w.at(1, 9, 5)
	w.checkSLA(t3) // first response breach
	w.at(1, 9, 30)
	w.message(t3, helpdeskflow.AuthorAgent, false)
	w.at(1, 10, 0)
	w.status(t2, helpdeskflow.StatusSolved)
	w.at(1, 11, 35)
	w.checkSLA(t3) // resolution warning
	w.at(1, 12, 5)
	w.checkSLA(t3) // resolution breach
	w.at(1, 16, 0)
	w.status(t3, helpdeskflow.StatusSolved)
	w.at(2, 9, 0)
	w.status(t2, helpdeskflow.StatusOpen) // reopened
	w.at(2, 12, 0)
	w.status(t2, helpdeskflow.StatusSolved)

	// Week 2.
	w.at(7, 9, 0)
	t4 := w.create("T4", "alice@example.com", "My refund has not arrived", "normal", apiMD, "refund")
	w.at(7, 9, 20)
	w.message(t4, helpdeskflow.AuthorAgent, false)
	w.at(7, 10, 0)
	w.status(t4, helpdeskflow.StatusPending)
	w.at(8, 9, 0)
	w.status(t4, helpdeskflow.StatusOpen)
	w.at(8, 10, 0)
	w.status(t4, helpdeskflow.StatusSolved)
	w.at(8, 11, 0)
	t5 := w.create("T5", "dave@example.com", "Feature question", "low", agentMD, "question")
	w.update(t5, agentMD, team("tier2"))
	w.at(8, 13, 0)
	w.message(t5, helpdeskflow.AuthorAgent, false)

	// Week 3.
	w.at(14, 9, 0)
	t6 := w.create("T6", "bob@example.com", "Login loop", "urgent", apiMD, "login")
	w.at(14, 9, 1)
	w.update(t6, apiMD, team("tier1"))
	w.at(14, 9, 10)
	w.message(t6, helpdeskflow.AuthorAgent, true) // an internal note is no response
	w.at(14, 9, 45)
	w.message(t6, helpdeskflow.AuthorAgent, false)
	w.at(15, 10, 0)
	w.status(t1, helpdeskflow.StatusClosed)
	if _, err := w.cmd.Tickets.UpdateCustomer(ctx, ws, apiMD, t1.customer, nil, tickets.UpdateCustomer{LinkedProfiles: []helpdeskflow.LinkedProfile{
		{Provider: "shopify", ExternalID: "sh-1", Data: map[string]any{"orders_count": 7, "total_spent": "120.50"}},
		{Provider: "stripe", ExternalID: "cus_1", Data: map[string]any{"subscription_status": "active", "plan": "pro"}},
	}}); err != nil {
		t.Fatal(err)
	}
}

// TestAnalyticsQueries runs every query of docs/analytics.md on a history
// made through the commands with an injected clock over three weeks,
// projected by the projector through a kfake broker into ClickHouse, and
// checks each result against what the test made happen. A query of the
// guide without a check (or a check without a query) fails the test.
func TestAnalyticsQueries(t *testing.T) {
	queries := readDocQueries(t)
	conn, _ := newDB(t)
	store := testenv.Store(t)
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	clock := testenv.NewClock(start)
	w := &analyticsWorld{t: t, ctx: context.Background(), clock: clock, start: start, tickets: map[string]*modelTicket{},
		cmd: testenv.NewCommands(store, testenv.CommandOptions{Clock: clock.Now})}
	makeHistory(t, w)

	live := startLiveProjection(t, store, conn)
	live.publish()
	var ticketEvents uint64
	for _, m := range w.tickets {
		ticketEvents += uint64(m.events)
	}
	eventually(t, wait, "ticket_history to hold every ticket event", func() bool {
		return queryUint(t, conn, "SELECT count() FROM ticket_history FINAL") == ticketEvents
	})
	reqs := analyticsRequests(w.workspace)
	_, logBrokers := testenv.Kafka(t) // the request log's topic
	produceAPIRequests(t, logBrokers, reqs...)
	startRequestLogProjector(t, conn, logBrokers, "g-analytics-requests")
	eventually(t, wait, "the request log", func() bool {
		return queryUint(t, conn, "SELECT count() FROM api_requests FINAL") == uint64(len(reqs))
	})

	checks := analyticsChecks(w)
	params := map[string]string{
		"workspace": "toUUID('" + w.workspace.String() + "')",
		"ticket":    "toUUID('" + w.tickets["T1"].id.String() + "')",
		"from":      "toDate('2026-03-02')",
		"to":        "toDate('2026-03-23')",
	}
	queries = slices.DeleteFunc(queries, func(q docQuery) bool { return q.section == factsSection })
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			check, ok := checks[q.name]
			if !ok {
				t.Fatalf("%s: query %q has no check in analyticsChecks: add one that compares its result with the history", analyticsDoc, q.name)
			}
			check(t, runQuery(t, conn, bindParameters(t, q, params)))
		})
	}
	for name := range checks {
		if !slices.ContainsFunc(queries, func(q docQuery) bool { return q.name == name }) {
			t.Errorf("analyticsChecks has a check for %q, which %s has no query of", name, analyticsDoc)
		}
	}
}

// bindParameters puts params' values in place of q's parameters
// ({name:Type}), as an analyst does in clickhouse-client on ClickHouse
// 18.16; a parameter without a value fails the test.
func bindParameters(t *testing.T, q docQuery, params map[string]string) string {
	t.Helper()
	return parameter.ReplaceAllStringFunc(q.sql, func(p string) string {
		name := parameter.FindStringSubmatch(p)[1]
		v, ok := params[name]
		if !ok {
			t.Fatalf("query %q takes an unknown parameter %s", q.name, p)
		}
		return v
	})
}

// result is a query's rows, each a map of column name to its value as
// text (fmt.Sprint of the scanned value, dates as YYYY-MM-DD).
type result []map[string]string

func runQuery(t *testing.T, conn driver.Conn, sql string) result {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, sql)
	}
	defer rows.Close()
	types, names := rows.ColumnTypes(), rows.Columns()
	var out result
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("scan: %v", err)
		}
		row := map[string]string{}
		for i, d := range dest {
			v := reflect.ValueOf(d).Elem().Interface()
			if tm, ok := v.(time.Time); ok && types[i].DatabaseTypeName() == "Date" {
				v = tm.Format("2006-01-02")
			}
			row[names[i]] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// project returns the given columns of each row joined by "|".
func (r result) project(columns ...string) []string {
	var out []string
	for _, row := range r {
		var parts []string
		for _, c := range columns {
			parts = append(parts, row[c])
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

func sameRows(t *testing.T, got result, columns []string, want []string) {
	t.Helper()
	if g := got.project(columns...); !slices.Equal(g, want) {
		t.Errorf("rows (%s):\n got  %q\n want %q", strings.Join(columns, "|"), g, want)
	}
}

// quantileExact is ClickHouse's quantileExact: the element at
// floor(level × n) of the sorted values.
func quantileExact(values []float64, level float64) float64 {
	s := slices.Clone(values)
	sort.Float64s(s)
	return s[min(int(level*float64(len(s))), len(s)-1)]
}

// num formats f as ClickHouse prints round(f, places).
func num(f float64, places int) string {
	p := math.Pow(10, float64(places))
	return fmt.Sprint(math.Round(f*p) / p)
}

func day(tm time.Time) string    { return tm.UTC().Format("2006-01-02") }
func monday(tm time.Time) string { return day(tm.AddDate(0, 0, -((int(tm.Weekday()) + 6) % 7))) }

// inRange reports whether tm lies in the queries' range [2026-03-02, 2026-03-23).
func inRange(tm time.Time) bool {
	return !tm.Before(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) && tm.Before(time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC))
}

// analyticsRequests is the request log the test feeds: two keys of the
// workspace on two days, with errors, and requests that the range or the
// workspace leave out.
func analyticsRequests(ws uuid.UUID) []helpdeskflow.APIRequest {
	var out []helpdeskflow.APIRequest
	add := func(key uuid.UUID, at time.Time, status int) {
		r := apiRequest(len(out))
		r.WorkspaceID, r.KeyID, r.Time, r.Status, r.ErrorCode = ws, key, at, status, ""
		if status >= 400 {
			r.ErrorCode = "validation_failed"
		}
		out = append(out, r)
	}
	d0, d1 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	add(logKeyA, d0, 200)
	add(logKeyA, d0.Add(time.Minute), 201)
	add(logKeyA, d0.Add(2*time.Minute), 422)
	add(logKeyB, d0.Add(time.Hour), 429)
	add(logKeyB, d0.Add(2*time.Hour), 422)
	add(logKeyA, d1, 200)
	add(logKeyA, d1.Add(time.Hour), 200)
	add(logKeyA, time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC), 500) // after the range
	add(logKeyA, d0, 200)
	out[len(out)-1].WorkspaceID = uuid.New() // another workspace
	return out
}

// analyticsChecks are the checks of the guide's queries by name, each
// comparing a query's result with what the history w made happen.
func analyticsChecks(w *analyticsWorld) map[string]func(*testing.T, result) {
	all := make([]*modelTicket, 0, len(w.order))
	for _, name := range w.order {
		all = append(all, w.tickets[name])
	}
	return map[string]func(*testing.T, result){
		"tickets_per_channel_per_day": func(t *testing.T, r result) {
			count := map[string]int{}
			for _, m := range all {
				count[day(m.created)+"|"+m.channel]++
			}
			var want []string
			for k, n := range count {
				want = append(want, k+"|"+fmt.Sprint(n))
			}
			sort.Strings(want)
			sameRows(t, r, []string{"day", "channel", "tickets"}, want)
		},
		"first_response_by_team_per_week": func(t *testing.T, r result) {
			minutes := map[string][]float64{}
			for _, m := range all {
				if !m.reply.IsZero() {
					k := monday(m.created) + "|" + m.team
					minutes[k] = append(minutes[k], m.reply.Sub(m.created).Minutes())
				}
			}
			var want []string
			for k, v := range minutes {
				want = append(want, fmt.Sprintf("%s|%d|%s|%s", k, len(v), num(quantileExact(v, 0.5), 1), num(quantileExact(v, 0.9), 1)))
			}
			sort.Strings(want)
			sameRows(t, r, []string{"week", "team", "tickets", "p50_minutes", "p90_minutes"}, want)
			if len(want) < 4 {
				t.Errorf("the history should have first responses in several weeks and teams: %v", want)
			}
		},
		"sla_breach_rate_by_policy_priority": func(t *testing.T, r result) {
			type agg struct{ n, warned, breached int }
			groups := map[string]*agg{}
			for _, m := range all {
				if m.policy == "" {
					continue
				}
				k := m.policy + "|" + m.priority
				if groups[k] == nil {
					groups[k] = &agg{}
				}
				g := groups[k]
				g.n++
				if m.warned {
					g.warned++
				}
				if m.breached {
					g.breached++
				}
			}
			var want []string
			for k, g := range groups {
				want = append(want, fmt.Sprintf("%s|%d|%d|%d|%s", k, g.n, g.warned, g.breached, num(float64(g.breached)/float64(g.n), 3)))
			}
			sort.Strings(want)
			sameRows(t, r, []string{"policy", "priority", "tickets", "warned_tickets", "breached_tickets", "breach_rate"}, want)
			if !slices.Contains(want, "Urgent|urgent|3|1|1|0.333") {
				t.Errorf("the history should have one breached ticket of three under Urgent: %v", want)
			}
		},
		"backlog_by_status_end_of_day": func(t *testing.T, r result) {
			var want []string
			for d := w.start; d.Before(time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC)); d = d.AddDate(0, 0, 1) {
				end := d.AddDate(0, 0, 1)
				count := map[string]int{}
				for _, m := range all {
					status := ""
					for _, c := range m.changes {
						if c.at.Before(end) {
							status = c.status
						}
					}
					if status != "" {
						count[status]++
					}
				}
				var statuses []string
				for s := range count {
					statuses = append(statuses, s)
				}
				sort.Strings(statuses)
				for _, s := range statuses {
					want = append(want, fmt.Sprintf("%s|%s|%d", day(d), s, count[s]))
				}
			}
			sameRows(t, r, []string{"day", "status", "tickets"}, want)
		},
		"reopen_rate_per_week": func(t *testing.T, r result) {
			type agg struct{ n, solved, reopened int }
			weeks := map[string]*agg{}
			for _, m := range all {
				k := monday(m.created)
				if weeks[k] == nil {
					weeks[k] = &agg{}
				}
				g := weeks[k]
				g.n++
				if !m.lastSolved.IsZero() {
					g.solved++
				}
				if m.reopens > 0 {
					g.reopened++
				}
			}
			var want []string
			for k, g := range weeks {
				want = append(want, fmt.Sprintf("%s|%d|%d|%d|%s", k, g.n, g.solved, g.reopened, num(float64(g.reopened)/float64(max(g.solved, 1)), 3)))
			}
			sort.Strings(want)
			sameRows(t, r, []string{"week", "tickets", "solved_tickets", "reopened_tickets", "reopen_rate"}, want)
			if !slices.Contains(want, "2026-03-02|3|3|1|0.333") {
				t.Errorf("the history should reopen one of the first week's three tickets: %v", want)
			}
		},
		"top_tags_by_volume_and_resolution": func(t *testing.T, r result) {
			count, hours := map[string]int{}, map[string][]float64{}
			for _, m := range all {
				for _, tag := range m.tags {
					count[tag]++
					if !m.lastSolved.IsZero() {
						hours[tag] = append(hours[tag], m.lastSolved.Sub(m.created).Hours())
					}
				}
			}
			var tags []string
			for tag := range count {
				tags = append(tags, tag)
			}
			sort.Slice(tags, func(i, j int) bool {
				if count[tags[i]] != count[tags[j]] {
					return count[tags[i]] > count[tags[j]]
				}
				return tags[i] < tags[j]
			})
			var want []string
			for _, tag := range tags {
				row := fmt.Sprintf("%s|%d|%d", tag, count[tag], len(hours[tag]))
				if len(hours[tag]) > 0 {
					row += "|" + num(quantileExact(hours[tag], 0.5), 2)
				}
				want = append(want, row)
			}
			got := r.project("tag", "tickets", "solved_tickets", "median_resolution_hours")
			for i := range got {
				if strings.HasSuffix(got[i], "|0|NaN") {
					got[i] = got[i][:strings.LastIndex(got[i], "|")] // no solved ticket: no median
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("rows:\n got  %q\n want %q", got, want)
			}
		},
		"automation_rules_by_firings": func(t *testing.T, r result) {
			fired := 0
			for _, m := range all {
				if strings.Contains(strings.ToLower(w.subjectOf(m)), "refund") {
					fired++
				}
			}
			sameRows(t, r, []string{"rule_id", "rule_name", "firings", "tickets", "events"},
				[]string{fmt.Sprintf("%s|Route refunds|%d|%d|%d", w.rule, fired, fired, fired)})
		},
		"ticket_changes": func(t *testing.T, r result) {
			t1 := w.tickets["T1"]
			versions := map[string]bool{}
			var seen []string
			for _, row := range r {
				versions[row["version"]] = true
				seen = append(seen, strings.Join([]string{row["event_type"], row["field"], row["new"], row["actor_type"], row["channel"], row["rule_id"]}, "|"))
			}
			if len(versions) != int(t1.events) {
				t.Errorf("rows of %d versions, want T1's %d events", len(versions), t1.events)
			}
			for _, want := range []string{
				"ticket.created|subject|\"Refund for order 1\"|api_key|api|",
				"ticket.updated|team|\"billing\"|rule|automation|" + w.rule.String(),
				"ticket.updated|tags|[\"order\",\"auto-refund\"]|rule|automation|" + w.rule.String(),
				"ticket.updated|status|\"solved\"|api_key|api|",
				"ticket.updated|status|\"closed\"|api_key|api|",
			} {
				if !slices.Contains(seen, want) {
					t.Errorf("no change %q among T1's:\n%s", want, strings.Join(seen, "\n"))
				}
			}
			if !slices.ContainsFunc(seen, func(s string) bool {
				return strings.HasPrefix(s, "ticket.message_added|messages|") && strings.HasSuffix(s, "|agent|agent|")
			}) {
				t.Errorf("no agent's message among T1's changes:\n%s", strings.Join(seen, "\n"))
			}
		},
		"ticket_timeline": func(t *testing.T, r result) {
			t1 := w.tickets["T1"]
			if len(r) != int(t1.events) {
				t.Fatalf("%d rows, want T1's %d events", len(r), t1.events)
			}
			first, second, last := r[0], r[1], r[len(r)-1]
			if first["event_type"] != helpdeskflow.EventTicketCreated || first["status"] != "new" || first["team"] != "" || first["event_channel"] != "api" {
				t.Errorf("first row %v, want the creation through the API, new, no team", first)
			}
			if second["rule_id"] != w.rule.String() || second["team"] != "billing" || second["event_channel"] != "automation" {
				t.Errorf("second row %v, want the rule's assignment to billing", second)
			}
			if last["status"] != "closed" || last["team"] != "billing" || last["priority"] != "urgent" || last["assignee_id"] != "agent-7" {
				t.Errorf("last row %v, want closed, billing, urgent, agent-7", last)
			}
			assigned := slices.IndexFunc(r, func(row map[string]string) bool { return row["assignee_id"] != "" })
			if assigned < 2 || r[assigned]["event_channel"] != "agent" || r[assigned-1]["assignee_id"] != "" {
				t.Errorf("the assignment should show as of the agent's update, after rows without assignee: %v", r.project("version", "assignee_id", "event_channel"))
			}
			for i := 1; i < len(r); i++ {
				if r[i]["version"] <= r[i-1]["version"] && len(r[i]["version"]) == len(r[i-1]["version"]) {
					t.Errorf("rows out of version order: %v", r.project("version"))
				}
			}
		},
		"time_in_status": func(t *testing.T, r result) {
			ms := map[string][]float64{}
			for _, m := range all {
				if !inRange(m.created) {
					continue
				}
				for i := 0; i+1 < len(m.changes); i++ {
					s := m.changes[i].status
					ms[s] = append(ms[s], float64(m.changes[i+1].at.Sub(m.changes[i].at).Milliseconds()))
				}
			}
			var statuses []string
			for s := range ms {
				statuses = append(statuses, s)
			}
			sort.Strings(statuses)
			var want []string
			for _, s := range statuses {
				sum := 0.0
				for _, v := range ms[s] {
					sum += v
				}
				want = append(want, fmt.Sprintf("%s|%d|%s|%s", s, len(ms[s]), num(sum/float64(len(ms[s]))/60000, 1), num(sum/3600000, 2)))
			}
			sameRows(t, r, []string{"status", "intervals", "avg_minutes", "total_hours"}, want)
			if len(want) < 3 {
				t.Errorf("the history should spend time in several statuses: %v", want)
			}
		},
		"api_usage_per_key_per_day": func(t *testing.T, r result) {
			sameRows(t, r, []string{"day", "key_id", "requests", "errors", "error_rate"}, []string{
				"2026-03-02|" + logKeyA.String() + "|3|1|0.333",
				"2026-03-02|" + logKeyB.String() + "|2|2|1",
				"2026-03-03|" + logKeyA.String() + "|2|0|0",
			})
		},
		"top_customers_with_linked_profiles": func(t *testing.T, r result) {
			count := map[string]int{}
			for _, m := range all {
				count[m.email]++
			}
			var emails []string
			for e := range count {
				emails = append(emails, e)
			}
			sort.Slice(emails, func(i, j int) bool {
				if count[emails[i]] != count[emails[j]] {
					return count[emails[i]] > count[emails[j]]
				}
				return emails[i] < emails[j]
			})
			var want []string
			for _, e := range emails {
				row := fmt.Sprintf("%s|%d||||", e, count[e])
				if e == "alice@example.com" {
					row = e + "|2|7|120.50|active|pro"
				}
				want = append(want, row)
			}
			sameRows(t, r, []string{"email", "tickets", "shopify_orders_count", "shopify_total_spent", "stripe_subscription_status", "stripe_plan"}, want)
		},
	}
}

// subjectOf is m's subject as the scenario created it.
func (w *analyticsWorld) subjectOf(m *modelTicket) string {
	tk, err := w.cmd.Tickets.GetTicket(w.ctx, w.workspace, m.id, false)
	if err != nil {
		w.t.Fatal(err)
	}
	return tk.Subject
}

// analyticsTables are the tables of migration 0010.
var analyticsTables = []string{"ticket_history", "ticket_service", "automation_firings"}

// TestAnalyticsBackfillByRebuild: a deployment that projected events
// before migration 0010 existed (here: the analytics tables emptied after
// a live projection) gets the same analytics rows as a live projection of
// the whole history from `projections rebuild --tables ticket_history`,
// and the views keep filling the swapped-in tables afterwards.
func TestAnalyticsBackfillByRebuild(t *testing.T) {
	old, _ := newBareDB(t)
	ctx := context.Background()
	if err := projections.MigrateUpTo(ctx, old, 9); err != nil {
		t.Fatal(err)
	}
	if err := projections.Migrate(ctx, old); err != nil {
		t.Fatalf("migration 0010 on a database of migration 0009: %v", err)
	}

	conn, _ := newDB(t)
	s := testenv.Store(t)
	ws := uuid.New()
	tickets, _ := history(t, s, ws, 12)
	touch(t, s, ws, tickets[:5], 3, "Changed")
	live := startLiveProjection(t, s, conn)
	live.publish()
	want := snapshot(t, conn, analyticsTables)
	if len(want["ticket_history"]) != 12*3+5 || len(want["automation_firings"]) != 5 || len(want["ticket_service"]) != 12 {
		t.Fatalf("the live projection wrote %d history, %d firing and %d service rows; want 41, 5, 12",
			len(want["ticket_history"]), len(want["automation_firings"]), len(want["ticket_service"]))
	}
	for _, table := range analyticsTables {
		if err := conn.Exec(ctx, "TRUNCATE TABLE "+table); err != nil {
			t.Fatal(err)
		}
	}

	report := rebuild(t, projections.RebuildConfig{ClickHouse: conn, Events: s, Tables: []string{"ticket_history"}, DropOld: true})
	if !slices.Contains(report.Tables, "ticket_service") || !slices.Contains(report.Tables, "tickets") {
		t.Errorf("--tables ticket_history rebuilt %v; want tickets and the analytics tables", report.Tables)
	}
	sameContents(t, "after the backfill", snapshot(t, conn, analyticsTables), want)

	more, _ := history(t, s, ws, 1)
	live.publish()
	eventually(t, wait, "the views to fill the swapped-in tables", func() bool {
		return queryUint(t, conn, "SELECT count() FROM ("+projections.ServiceFactsQuery()+") WHERE ticket_id = toUUID('"+more[0].String()+"')") == 1
	})
}

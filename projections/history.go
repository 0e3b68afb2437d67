package projections

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// The analytics model of the ticket life (docs/analytics.md): the fold
// writes one ticket_history row per ticket event it applies, holding the
// ticket as the event left it; two materialized views on ticket_history
// (historyViews) keep ticket_service (the service facts per ticket,
// AggregatingMergeTree) and automation_firings (the ticket events rules
// caused, sorted by rule). They are rebuilt with `projections rebuild
// --tables ticket_history`, which folds the tickets too.

// historyRow is one row of ticket_history.
type historyRow struct {
	WorkspaceID   uuid.UUID
	TicketID      uuid.UUID
	Version       uint64
	EventType     string
	OccurredAt    time.Time
	OccurredAtMs  int64
	CreatedAtMs   int64
	ActorType     string
	ActorID       string
	EventChannel  string
	RuleID        string
	RequestID     string
	CausationID   string
	Status        string
	StatusBefore  string
	Priority      string
	Type          string
	Channel       string
	Team          string
	AssigneeID    string
	CustomerID    uuid.UUID
	Tags          []string
	MessageAuthor string
	MessageIntern uint8
	SLAPolicyID   string
	SLAPolicyName string
	SLAFirstMins  uint32
	SLAResolMins  uint32
	SLATarget     string
	SLADueAtMs    int64
}

const historyColumns = "workspace_id, ticket_id, version, event_type, occurred_at, occurred_at_ms, created_at_ms, " +
	"actor_type, actor_id, event_channel, rule_id, request_id, causation_id, " +
	"status, status_before, priority, type, channel, team, assignee_id, customer_id, tags, " +
	"message_author, message_internal, sla_policy_id, sla_policy_name, sla_first_response_minutes, sla_resolution_minutes, " +
	"sla_target, sla_due_at_ms"

// historyColumnValues is rows column by column, in historyColumns' order.
func historyColumnValues(rows []historyRow) []any {
	return []any{
		column(rows, func(r *historyRow) uuid.UUID { return r.WorkspaceID }),
		column(rows, func(r *historyRow) uuid.UUID { return r.TicketID }),
		column(rows, func(r *historyRow) uint64 { return r.Version }),
		column(rows, func(r *historyRow) string { return r.EventType }),
		column(rows, func(r *historyRow) time.Time { return r.OccurredAt }),
		column(rows, func(r *historyRow) int64 { return r.OccurredAtMs }),
		column(rows, func(r *historyRow) int64 { return r.CreatedAtMs }),
		column(rows, func(r *historyRow) string { return r.ActorType }),
		column(rows, func(r *historyRow) string { return r.ActorID }),
		column(rows, func(r *historyRow) string { return r.EventChannel }),
		column(rows, func(r *historyRow) string { return r.RuleID }),
		column(rows, func(r *historyRow) string { return r.RequestID }),
		column(rows, func(r *historyRow) string { return r.CausationID }),
		column(rows, func(r *historyRow) string { return r.Status }),
		column(rows, func(r *historyRow) string { return r.StatusBefore }),
		column(rows, func(r *historyRow) string { return r.Priority }),
		column(rows, func(r *historyRow) string { return r.Type }),
		column(rows, func(r *historyRow) string { return r.Channel }),
		column(rows, func(r *historyRow) string { return r.Team }),
		column(rows, func(r *historyRow) string { return r.AssigneeID }),
		column(rows, func(r *historyRow) uuid.UUID { return r.CustomerID }),
		column(rows, func(r *historyRow) []string { return nonNil(r.Tags) }),
		column(rows, func(r *historyRow) string { return r.MessageAuthor }),
		column(rows, func(r *historyRow) uint8 { return r.MessageIntern }),
		column(rows, func(r *historyRow) string { return r.SLAPolicyID }),
		column(rows, func(r *historyRow) string { return r.SLAPolicyName }),
		column(rows, func(r *historyRow) uint32 { return r.SLAFirstMins }),
		column(rows, func(r *historyRow) uint32 { return r.SLAResolMins }),
		column(rows, func(r *historyRow) string { return r.SLATarget }),
		column(rows, func(r *historyRow) int64 { return r.SLADueAtMs }),
	}
}

// historyRowOf describes e, applied to a ticket whose status was
// statusBefore ("" for its creation) and that it left as t, with the
// messages it added.
func historyRowOf(e *helpdeskflow.Event, t *helpdeskflow.Ticket, statusBefore string, added []helpdeskflow.Message) historyRow {
	r := historyRow{
		WorkspaceID: e.WorkspaceID, TicketID: e.StreamID, Version: uint64(e.Version), EventType: e.Type,
		OccurredAt: e.OccurredAt.UTC().Truncate(time.Second), OccurredAtMs: e.OccurredAt.UnixMilli(), CreatedAtMs: t.CreatedAt.UnixMilli(),
		ActorType: e.Metadata.Actor.Type, ActorID: e.Metadata.Actor.ID, EventChannel: e.Metadata.Channel,
		RuleID: e.Metadata.RuleID, RequestID: e.Metadata.RequestID, CausationID: e.Metadata.CausationID,
		Status: t.Status, StatusBefore: statusBefore, Priority: t.Priority, Type: t.Type, Channel: t.Channel,
		Team: deref(t.Team), AssigneeID: deref(t.AssigneeID), CustomerID: t.CustomerID, Tags: nonNil(t.Tags),
	}
	if len(added) > 0 {
		r.MessageAuthor = added[0].AuthorType
		if added[0].Internal {
			r.MessageIntern = 1
		}
	}
	switch e.Type {
	case helpdeskflow.EventTicketSLAPolicyApplied:
		// The row the fold starts from keeps no SLA, so applying the
		// policy event left exactly its policy in t.SLA (nil: removed).
		if s := t.SLA; s != nil {
			r.SLAPolicyID, r.SLAPolicyName = s.PolicyID.String(), s.PolicyName
			if s.FirstResponse != nil {
				r.SLAFirstMins = uint32(max(0, s.FirstResponse.Spec.Minutes))
			}
			if s.Resolution != nil {
				r.SLAResolMins = uint32(max(0, s.Resolution.Spec.Minutes))
			}
		}
	case helpdeskflow.EventTicketSLAWarning, helpdeskflow.EventTicketSLABreached:
		var p helpdeskflow.SLAPoint
		if json.Unmarshal(e.Data, &p) == nil {
			r.SLATarget, r.SLADueAtMs = p.Target, p.DueAt.UnixMilli()
		}
	}
	return r
}

// historyColumnDefs are the columns of ticket_history.
const historyColumnDefs = `    workspace_id   UUID,
    ticket_id      UUID,
    version        UInt64,
    event_type     String,
    occurred_at    DateTime,
    occurred_at_ms Int64,
    created_at_ms  Int64,
    actor_type     String,
    actor_id       String,
    event_channel  String,
    rule_id        String,
    request_id     String,
    causation_id   String,
    status         String,
    status_before  String,
    priority       String,
    type           String,
    channel        String,
    team           String,
    assignee_id    String,
    customer_id    UUID,
    tags           Array(String),
    message_author String,
    message_internal UInt8,
    sla_policy_id  String,
    sla_policy_name String,
    sla_first_response_minutes UInt32,
    sla_resolution_minutes UInt32,
    sla_target     String,
    sla_due_at_ms  Int64
`

// serviceFact is one column of ticket_service: its aggregate state type
// and the -State expression over ticket_history rows that fills it. Every
// aggregate gives the same result when a row comes twice (a redelivered
// event passes the view again): min, max, argMax, uniqExact of versions.
// No name is one of ticket_history's columns: in the view's query an alias
// would replace the column in the other expressions.
type serviceFact struct{ name, typ, expr string }

// Conditions of the service facts, over ticket_history's columns.
const (
	condFirstResponse = "event_type = 'ticket.message_added' AND message_author = 'agent' AND message_internal = 0"
	condSolved        = "status = 'solved' AND status_before != 'solved'"
	condReopened      = "status = 'open' AND status_before = 'solved'"
	condPolicy        = "event_type = 'ticket.sla_policy_applied'"
)

var serviceFacts = []serviceFact{
	{"ticket_created_at_ms", "AggregateFunction(min, Int64)", "minState(created_at_ms)"},
	{"last_version", "AggregateFunction(max, UInt64)", "maxState(version)"},
	{"current_status", "AggregateFunction(argMax, String, UInt64)", "argMaxState(status, version)"},
	{"current_priority", "AggregateFunction(argMax, String, UInt64)", "argMaxState(priority, version)"},
	{"ticket_channel", "AggregateFunction(argMax, String, UInt64)", "argMaxState(channel, version)"},
	{"current_team", "AggregateFunction(argMax, String, UInt64)", "argMaxState(team, version)"},
	{"current_assignee_id", "AggregateFunction(argMax, String, UInt64)", "argMaxState(assignee_id, version)"},
	{"current_customer_id", "AggregateFunction(argMax, String, UInt64)", "argMaxState(toString(customer_id), version)"},
	{"current_tags", "AggregateFunction(argMax, Array(String), UInt64)", "argMaxState(tags, version)"},
	{"first_response_at_ms", "AggregateFunction(minIf, Int64, UInt8)", "minIfState(occurred_at_ms, " + condFirstResponse + ")"},
	{"first_solved_at_ms", "AggregateFunction(minIf, Int64, UInt8)", "minIfState(occurred_at_ms, " + condSolved + ")"},
	{"solved_at_ms", "AggregateFunction(maxIf, Int64, UInt8)", "maxIfState(occurred_at_ms, " + condSolved + ")"},
	{"reopens", "AggregateFunction(uniqExactIf, UInt64, UInt8)", "uniqExactIfState(version, " + condReopened + ")"},
	{"policy_id", "AggregateFunction(argMaxIf, String, UInt64, UInt8)", "argMaxIfState(sla_policy_id, version, " + condPolicy + ")"},
	{"policy_name", "AggregateFunction(argMaxIf, String, UInt64, UInt8)", "argMaxIfState(sla_policy_name, version, " + condPolicy + ")"},
	{"first_response_target_minutes", "AggregateFunction(argMaxIf, UInt32, UInt64, UInt8)", "argMaxIfState(sla_first_response_minutes, version, " + condPolicy + ")"},
	{"resolution_target_minutes", "AggregateFunction(argMaxIf, UInt32, UInt64, UInt8)", "argMaxIfState(sla_resolution_minutes, version, " + condPolicy + ")"},
	{"first_response_warned_at_ms", "AggregateFunction(minIf, Int64, UInt8)", "minIfState(occurred_at_ms, event_type = 'ticket.sla_warning' AND sla_target = 'first_response')"},
	{"first_response_breached_at_ms", "AggregateFunction(minIf, Int64, UInt8)", "minIfState(occurred_at_ms, event_type = 'ticket.sla_breached' AND sla_target = 'first_response')"},
	{"resolution_warned_at_ms", "AggregateFunction(minIf, Int64, UInt8)", "minIfState(occurred_at_ms, event_type = 'ticket.sla_warning' AND sla_target = 'resolution')"},
	{"resolution_breached_at_ms", "AggregateFunction(minIf, Int64, UInt8)", "minIfState(occurred_at_ms, event_type = 'ticket.sla_breached' AND sla_target = 'resolution')"},
	{"automation_events", "AggregateFunction(uniqExactIf, UInt64, UInt8)", "uniqExactIfState(version, rule_id != '')"},
}

// serviceColumnDefs are the columns of ticket_service.
func serviceColumnDefs() string {
	var b strings.Builder
	b.WriteString("    workspace_id UUID,\n    ticket_id UUID")
	for _, f := range serviceFacts {
		b.WriteString(",\n    " + f.name + " " + f.typ)
	}
	return b.String() + "\n"
}

// serviceSelect is the view's query of ticket_service over source.
func serviceSelect(source string) string {
	exprs := []string{"workspace_id", "ticket_id"}
	for _, f := range serviceFacts {
		exprs = append(exprs, f.expr+" AS "+f.name)
	}
	return "SELECT " + strings.Join(exprs, ", ") + " FROM " + source + " GROUP BY workspace_id, ticket_id"
}

// firingColumns are automation_firings' columns, all of ticket_history.
const firingColumns = "workspace_id, rule_id, ticket_id, version, event_type, occurred_at, occurred_at_ms, request_id, causation_id"

// firingSelect is the view's query of automation_firings over source.
func firingSelect(source string) string {
	return "SELECT " + firingColumns + " FROM " + source + " WHERE rule_id != ''"
}

// historyViews are the materialized views on ticket_history, by view
// name, target and query over a source table. A rebuild fills the new
// targets from the new ticket_history with the same queries before the
// swap, and re-creates the views on the swapped-in ticket_history.
var historyViews = []struct {
	name, target string
	query        func(source string) string
}{
	{"ticket_service_mv", "ticket_service", serviceSelect},
	{"automation_firings_mv", "automation_firings", firingSelect},
}

// historyViewDDL creates the view named name of historyViews on
// ticket_history.
func historyViewDDL(name, target string, query func(string) string) string {
	return "CREATE MATERIALIZED VIEW " + name + " TO " + target + " AS " + query("ticket_history")
}

// CopyFedViews gives a copy of table (prefix+table, created like it) the
// materialized views table feeds (ticket_history's; none for the other
// tables): each view's copy, prefix+view, feeds prefix+target, a table
// created like target, from prefix+table with the view's own query, so
// that inserting into the copy does the work inserting into table does.
// Copies an earlier call made are replaced. The bench's bulk-insert
// baseline uses it to insert the same rows as a rebuild into the same
// schema. Errors: EInternal (or EUnavailable) for a failed statement.
func CopyFedViews(ctx context.Context, conn driver.Conn, table, prefix string) error {
	if table != "ticket_history" {
		return nil
	}
	for _, v := range historyViews {
		for _, stmt := range []string{
			"DROP TABLE IF EXISTS " + prefix + v.name,
			"DROP TABLE IF EXISTS " + prefix + v.target,
			"CREATE TABLE " + prefix + v.target + " AS " + v.target,
			"CREATE MATERIALIZED VIEW " + prefix + v.name + " TO " + prefix + v.target + " AS " + v.query(prefix+table),
		} {
			if err := conn.Exec(ctx, stmt); err != nil {
				return chError("copy the view "+v.name, err)
			}
		}
	}
	return nil
}

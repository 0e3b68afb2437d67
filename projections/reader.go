package projections

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// DefaultListLimit is the page size of ListTickets when TicketFilter.Limit is
// 0, and MaxListLimit the largest accepted.
const (
	DefaultListLimit = 25
	MaxListLimit     = 100
)

// TicketFilter selects and pages the tickets of a workspace; see
// helpdeskflow.TicketFilter. Limit 0 means DefaultListLimit, at most
// MaxListLimit.
type TicketFilter = helpdeskflow.TicketFilter

// TicketPage is one page of tickets, newest first. Each ticket has its list
// fields, version, timestamps and CustomerID; Customer and Messages are nil
// (the read model does not join them; fetch the ticket for those).
// NextCursor is "" on the last page.
type TicketPage = helpdeskflow.TicketPage

// TicketReader answers ticket list queries (GET /v1/tickets) from the
// tickets_by_created and tickets_by_customer tables of the ClickHouse read
// model. The read model trails the
// event store by the projector's lag. It is safe for concurrent use.
type TicketReader struct {
	conn driver.Conn
}

// NewTicketReader returns a TicketReader that queries conn, a connection
// bound to the projection database. The reader does not close conn.
func NewTicketReader(conn driver.Conn) *TicketReader {
	return &TicketReader{conn: conn}
}

// Ping checks that ClickHouse answers, for readiness probes. It returns an
// EUnavailable error when it does not.
func (r *TicketReader) Ping(ctx context.Context) error {
	if err := r.conn.Ping(ctx); err != nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "ClickHouse unreachable", Err: err}
	}
	return nil
}

var (
	knownStatuses   = []string{helpdeskflow.StatusNew, helpdeskflow.StatusOpen, helpdeskflow.StatusPending, helpdeskflow.StatusOnHold, helpdeskflow.StatusSolved, helpdeskflow.StatusClosed}
	knownPriorities = []string{helpdeskflow.PriorityLow, helpdeskflow.PriorityNormal, helpdeskflow.PriorityHigh, helpdeskflow.PriorityUrgent}
)

// ListTickets returns a page of workspaceID's tickets that match filter,
// newest first (by creation time, then id), with a keyset cursor: pages do
// not shift when tickets are created or updated between requests. It reads
// tickets_by_created and tickets_by_customer (see pageRows for how). Cursors keep the format they
// had when the list read tickets, so cursors handed out before stay valid.
//
// It returns an EValidation error listing every bad field ("cursor":
// "malformed"; "limit", "status", "priority": out of range or unknown), an
// EUnavailable error when ClickHouse cannot be reached, and EInternal when
// the query fails otherwise.
func (r *TicketReader) ListTickets(ctx context.Context, workspaceID uuid.UUID, filter TicketFilter) (TicketPage, error) {
	limit, problems := checkLimit(filter.Limit, nil)
	if filter.Status != "" && !slices.Contains(knownStatuses, filter.Status) {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "status", Problem: "must be one of " + strings.Join(knownStatuses, ", ")})
	}
	if filter.Priority != "" && !slices.Contains(knownPriorities, filter.Priority) {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "priority", Problem: "must be one of " + strings.Join(knownPriorities, ", ")})
	}
	after, problems := checkCursor(filter.Cursor, problems)
	if len(problems) > 0 {
		return TicketPage{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "invalid ticket list query", Details: problems}
	}

	q := listQuery{workspaceID: workspaceID, limit: limit, customerID: filter.CustomerID}
	q.filter, q.args = filterConditions(filter)
	found, err := r.pageRows(ctx, q, after, time.Now())
	if err != nil {
		return TicketPage{}, err
	}

	page := TicketPage{Tickets: make([]helpdeskflow.Ticket, 0, min(len(found), limit))}
	for i := range found[:min(len(found), limit)] {
		page.Tickets = append(page.Tickets, found[i].ticket())
	}
	if len(found) > limit {
		last := found[limit-1]
		page.NextCursor = cursor{createdAtMs: last.CreatedAtMs, ticketID: last.TicketID}.encode()
	}
	return page, nil
}

// filterConditions is filter as SQL conditions on a ticket row (joined
// with AND; "" for none) and their arguments.
func filterConditions(filter TicketFilter) (string, []any) {
	var where []string
	var args []any
	if filter.Status != "" {
		where, args = append(where, "status = ?"), append(args, filter.Status)
	}
	if filter.Priority != "" {
		where, args = append(where, "priority = ?"), append(args, filter.Priority)
	}
	if filter.Tag != "" {
		where, args = append(where, "has(tags, ?)"), append(args, filter.Tag)
	}
	if filter.CustomerID != uuid.Nil {
		where, args = append(where, "customer_id = toUUID(?)"), append(args, filter.CustomerID.String())
	}
	if filter.Team != "" {
		where, args = append(where, "team = ?"), append(args, filter.Team)
	}
	if !filter.UpdatedAfter.IsZero() {
		where, args = append(where, "updated_at_ms > ?"), append(args, filter.UpdatedAfter.UnixMilli())
	}
	return strings.Join(where, " AND "), args
}

// cursor is the sort key of the last ticket of a page, the key a page
// continues below. A cursor with the nil ticket id stands for "created
// before createdAtMs": no ticket id sorts below it.
type cursor struct {
	createdAtMs int64
	ticketID    uuid.UUID
}

const cursorLen = 8 + 16

// encode returns base64url (no padding) of created_at_ms (8 bytes, big
// endian) followed by the ticket id's 16 bytes.
func (c cursor) encode() string {
	var b [cursorLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.createdAtMs))
	copy(b[8:], c.ticketID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkLimit returns a list's page size: limit, or DefaultListLimit for 0.
// A limit outside 1..MaxListLimit adds a "limit" problem to problems.
func checkLimit(limit int, problems []helpdeskflow.FieldProblem) (int, []helpdeskflow.FieldProblem) {
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 1 || limit > MaxListLimit {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "limit", Problem: "must be between 1 and 100"})
	}
	return limit, problems
}

// checkCursor decodes a list's cursor: nil for "" (the first page). A
// malformed one adds a "cursor" problem to problems.
func checkCursor(encoded string, problems []helpdeskflow.FieldProblem) (*cursor, []helpdeskflow.FieldProblem) {
	if encoded == "" {
		return nil, problems
	}
	c, ok := decodeCursor(encoded)
	if !ok {
		problems = append(problems, helpdeskflow.FieldProblem{Field: "cursor", Problem: "malformed"})
	}
	return &c, problems
}

func decodeCursor(s string) (cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return cursor{}, false
	}
	var c cursor
	c.createdAtMs = int64(binary.BigEndian.Uint64(b[:8]))
	copy(c.ticketID[:], b[8:])
	return c, true
}

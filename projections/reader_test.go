package projections_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

type ticketFixture struct {
	id          uuid.UUID
	version     uint64
	status      string
	priority    string
	tags        []string
	customer    uuid.UUID
	team        string
	createdAtMs int64
	updatedAtMs int64
}

func insertTickets(t *testing.T, conn driver.Conn, workspace uuid.UUID, tickets ...ticketFixture) {
	t.Helper()
	ctx := context.Background()
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO tickets (workspace_id, ticket_id, version, subject, status, priority, type, channel,
		tags, customer_id, assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tickets {
		if tk.tags == nil {
			tk.tags = []string{}
		}
		err := batch.Append(workspace, tk.id, tk.version, "subject "+tk.id.String()[:4], tk.status, tk.priority, "", "api",
			tk.tags, tk.customer, "", tk.team, "", `{"n":1}`, uint32(1), tk.createdAtMs, tk.updatedAtMs)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

func ids(tickets []helpdeskflow.Ticket) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(tickets))
	for _, tk := range tickets {
		out = append(out, tk.ID)
	}
	return out
}

func sameSet(a, b []uuid.UUID) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	cmp := func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

func TestTicketReader_ListTickets(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	ws, other := uuid.New(), uuid.New()
	c1, c2 := uuid.New(), uuid.New()
	t1 := ticketFixture{uuid.New(), 1, "open", "high", []string{"vip"}, c1, "billing", 1000, 5000}
	t2 := ticketFixture{uuid.New(), 1, "new", "normal", nil, c2, "", 2000, 2000}
	t3 := ticketFixture{uuid.New(), 1, "open", "low", []string{"vip", "refund"}, c1, "support", 3000, 3000}
	t4 := ticketFixture{uuid.New(), 1, "solved", "urgent", []string{"refund"}, c2, "billing", 3000, 9000} // same created_at as t3
	t5old := ticketFixture{uuid.New(), 1, "open", "normal", []string{"stale"}, c1, "billing", 4000, 4000}
	t5 := t5old
	t5.version, t5.status, t5.tags, t5.team, t5.updatedAtMs = 2, "pending", nil, "support", 4500
	t6 := ticketFixture{uuid.New(), 1, "open", "high", []string{"vip"}, c1, "billing", 5000, 5000}
	// Separate inserts leave t5's two versions in separate parts, unmerged.
	insertTickets(t, conn, ws, t1, t2, t3, t4, t5old)
	insertTickets(t, conn, ws, t5)
	insertTickets(t, conn, other, t6)

	r := projections.NewTicketReader(conn)
	ctx := context.Background()
	list := func(f projections.TicketFilter) projections.TicketPage {
		t.Helper()
		page, err := r.ListTickets(ctx, ws, f)
		if err != nil {
			t.Fatalf("ListTickets(%+v): %v", f, err)
		}
		return page
	}

	all := list(projections.TicketFilter{})
	if got := len(all.Tickets); got != 5 {
		t.Fatalf("ListTickets returned %d tickets, want 5 (one per ticket, workspace scoped)", got)
	}
	if all.NextCursor != "" {
		t.Errorf("NextCursor = %q for a complete page, want empty", all.NextCursor)
	}
	if got := all.Tickets[0]; got.ID != t5.id || got.Status != "pending" || got.Version != 2 || got.Team == nil || *got.Team != "support" {
		t.Errorf("newest ticket = %+v, want t5 at version 2", got)
	}
	if got, want := all.Tickets[4].ID, t1.id; got != want {
		t.Errorf("oldest ticket = %s, want t1 %s", got, want)
	}
	for i := 1; i < len(all.Tickets); i++ {
		if all.Tickets[i-1].CreatedAt.Before(all.Tickets[i].CreatedAt) {
			t.Errorf("tickets not newest first at %d", i)
		}
	}
	if tk := all.Tickets[4]; tk.Priority != "high" || !slices.Equal(tk.Tags, []string{"vip"}) || tk.CustomerID != c1 ||
		tk.CreatedAt != time.UnixMilli(1000).UTC() || tk.UpdatedAt != time.UnixMilli(5000).UTC() || tk.AssigneeID != nil ||
		tk.CustomFields["n"] != 1.0 || tk.Customer != nil {
		t.Errorf("t1 = %+v", tk)
	}

	t.Run("Pagination", func(t *testing.T) {
		var got []uuid.UUID
		cursor := ""
		pages := 0
		for {
			page := list(projections.TicketFilter{Limit: 2, Cursor: cursor})
			pages++
			if len(page.Tickets) > 2 {
				t.Fatalf("page %d has %d tickets, limit 2", pages, len(page.Tickets))
			}
			got = append(got, ids(page.Tickets)...)
			if page.NextCursor == "" {
				break
			}
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			cursor = page.NextCursor
		}
		if pages != 3 {
			t.Errorf("5 tickets with limit 2 took %d pages, want 3", pages)
		}
		if want := ids(all.Tickets); !slices.Equal(got, want) {
			t.Errorf("paged ids = %v, want the single-page order %v", got, want)
		}
	})

	t.Run("CursorOfEarlierReleases", func(t *testing.T) {
		// Earlier releases encoded a cursor as base64url of created_at_ms
		// (8 bytes, big endian) and the ticket id: it still continues the
		// list below that ticket.
		raw := binary.BigEndian.AppendUint64(nil, uint64(t5.createdAtMs))
		raw = append(raw, t5.id[:]...)
		page := list(projections.TicketFilter{Cursor: base64.RawURLEncoding.EncodeToString(raw)})
		if got, want := ids(page.Tickets), ids(all.Tickets)[1:]; !slices.Equal(got, want) {
			t.Errorf("page after t5 = %v, want %v", got, want)
		}
	})

	t.Run("PaginationWithFilter", func(t *testing.T) {
		first := list(projections.TicketFilter{CustomerID: c1, Limit: 2})
		second := list(projections.TicketFilter{CustomerID: c1, Limit: 2, Cursor: first.NextCursor})
		if got, want := append(ids(first.Tickets), ids(second.Tickets)...), []uuid.UUID{t5.id, t3.id, t1.id}; !slices.Equal(got, want) {
			t.Errorf("customer c1 pages = %v, want %v", got, want)
		}
		if second.NextCursor != "" {
			t.Errorf("last page NextCursor = %q, want empty", second.NextCursor)
		}
	})

	for _, tc := range []struct {
		name   string
		filter projections.TicketFilter
		want   []uuid.UUID
	}{
		{"Status", projections.TicketFilter{Status: "open"}, []uuid.UUID{t1.id, t3.id}}, // not t5, open only in an old version
		{"Priority", projections.TicketFilter{Priority: "urgent"}, []uuid.UUID{t4.id}},
		{"Tag", projections.TicketFilter{Tag: "vip"}, []uuid.UUID{t1.id, t3.id}},
		{"TagOfOldVersion", projections.TicketFilter{Tag: "stale"}, nil},
		{"Customer", projections.TicketFilter{CustomerID: c1}, []uuid.UUID{t1.id, t3.id, t5.id}},
		{"Team", projections.TicketFilter{Team: "billing"}, []uuid.UUID{t1.id, t4.id}},
		{"UpdatedAfter", projections.TicketFilter{UpdatedAfter: time.UnixMilli(4500)}, []uuid.UUID{t1.id, t4.id}},
		{"UpdatedAfterIsStrict", projections.TicketFilter{UpdatedAfter: time.UnixMilli(5000)}, []uuid.UUID{t4.id}},
		{"Combined", projections.TicketFilter{Status: "open", Tag: "refund"}, []uuid.UUID{t3.id}},
		{"NoMatch", projections.TicketFilter{Team: "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := list(tc.filter)
			if got := ids(page.Tickets); !sameSet(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
			if page.Tickets == nil {
				t.Error("Tickets is nil, want an empty slice")
			}
		})
	}

	t.Run("OtherWorkspace", func(t *testing.T) {
		page, err := r.ListTickets(ctx, other, projections.TicketFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(page.Tickets), []uuid.UUID{t6.id}; !slices.Equal(got, want) {
			t.Errorf("other workspace ids = %v, want %v", got, want)
		}
	})
}

func TestTicketReader_ListTickets_Validation(t *testing.T) {
	t.Parallel()
	// Validation happens before any query, so no server is needed.
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := projections.NewTicketReader(conn)
	for _, tc := range []struct {
		name   string
		filter projections.TicketFilter
		want   []helpdeskflow.FieldProblem
	}{
		{"CursorNotBase64", projections.TicketFilter{Cursor: "!!not base64!!"},
			[]helpdeskflow.FieldProblem{{Field: "cursor", Problem: "malformed"}}},
		{"CursorWrongLength", projections.TicketFilter{Cursor: base64.RawURLEncoding.EncodeToString([]byte("short"))},
			[]helpdeskflow.FieldProblem{{Field: "cursor", Problem: "malformed"}}},
		{"LimitTooLarge", projections.TicketFilter{Limit: 101},
			[]helpdeskflow.FieldProblem{{Field: "limit", Problem: "must be between 1 and 100"}}},
		{"Everything", projections.TicketFilter{Limit: -1, Status: "bogus", Priority: "meh", Cursor: "x"},
			[]helpdeskflow.FieldProblem{
				{Field: "limit", Problem: "must be between 1 and 100"},
				{Field: "status", Problem: "must be one of new, open, pending, on_hold, solved, closed"},
				{Field: "priority", Problem: "must be one of low, normal, high, urgent"},
				{Field: "cursor", Problem: "malformed"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.ListTickets(context.Background(), uuid.New(), tc.filter)
			if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EValidation; got != want {
				t.Fatalf("ErrorCode(%v) = %q, want %q", err, got, want)
			}
			if got := helpdeskflow.ErrorDetails(err); !slices.Equal(got, tc.want) {
				t.Errorf("details = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTicketReader_Unavailable(t *testing.T) {
	t.Parallel()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := projections.NewTicketReader(conn)
	if _, err := r.ListTickets(context.Background(), uuid.New(), projections.TicketFilter{}); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnavailable {
		t.Errorf("ListTickets against a closed port = %v (code %q), want %q", err, helpdeskflow.ErrorCode(err), helpdeskflow.EUnavailable)
	}
	if err := r.Ping(context.Background()); helpdeskflow.ErrorCode(err) != helpdeskflow.EUnavailable {
		t.Errorf("Ping against a closed port = %v, want code %q", err, helpdeskflow.EUnavailable)
	}
}

func TestTicketReader_Ping(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	if err := projections.NewTicketReader(conn).Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v", err)
	}
}

func TestTicketReader_ListTickets_MissingTable(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	if err := conn.Exec(context.Background(), "DROP TABLE tickets_by_created"); err != nil {
		t.Fatal(err)
	}
	_, err := projections.NewTicketReader(conn).ListTickets(context.Background(), uuid.New(), projections.TicketFilter{})
	if got, want := helpdeskflow.ErrorCode(err), helpdeskflow.EInternal; got != want {
		t.Errorf("ErrorCode(%v) = %q, want %q", err, got, want)
	}
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		t.Errorf("cause %v is not kept in the error chain", err)
	}
}

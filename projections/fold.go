package projections

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/helpdeskflow/helpdeskflow"
)

// targetTables names the tables a fold reads previous state from and writes
// its rows to: the live tables for the projector, the new ones for a
// rebuild. An empty name is a table not written; its entity is not folded
// (ticket_messages needs the tickets folded, so it is written only with
// tickets).
type targetTables struct {
	tickets, customers, messages, audit string
	// history is ticket_history, written only with tickets (a row holds
	// the ticket as its event left it).
	history string
	// ticketCopies get the ticket rows too: the list tables of a rebuild,
	// which no view feeds yet.
	ticketCopies []string
}

// liveTables are the tables the projector writes (the views of migration
// 0007 copy tickets into the list tables).
var liveTables = targetTables{tickets: "tickets", customers: "customers", messages: "ticket_messages", audit: "audit_log", history: "ticket_history"}

// loadState reads from ClickHouse the latest row of every ticket and
// customer that an event of b continues (version > 1) and that is neither in
// the cache nor created earlier in b.
func (p *Projector) loadState(ctx context.Context, b *batch) error {
	var ticketKeys, customerKeys []streamKey
	seen := map[streamKey]bool{}
	for i := range b.events {
		e := &b.events[i]
		k := streamKey{e.WorkspaceID, e.StreamID}
		if seen[k] {
			continue
		}
		seen[k] = true
		if e.Version <= 1 {
			continue // a creation, or the first event of the stream in b that needs no previous state
		}
		switch e.StreamType {
		case helpdeskflow.StreamTicket:
			if _, ok := p.tickets.get(k); !ok && p.tables.tickets != "" {
				ticketKeys = append(ticketKeys, k)
			}
		case helpdeskflow.StreamCustomer:
			if _, ok := p.customers.get(k); !ok && p.tables.customers != "" {
				customerKeys = append(customerKeys, k)
			}
		}
	}
	tickets := map[streamKey]ticketRow{}
	err := loadRows(ctx, p.cfg.ClickHouse, p.tables.tickets, ticketColumns, "ticket_id", ticketKeys, func(rows driver.Rows) error {
		var r ticketRow
		if err := rows.Scan(r.scanDest()...); err != nil {
			return err
		}
		tickets[streamKey{r.WorkspaceID, r.TicketID}] = r
		return nil
	})
	if err != nil {
		return err
	}
	customers := map[streamKey]customerRow{}
	err = loadRows(ctx, p.cfg.ClickHouse, p.tables.customers, customerColumns, "customer_id", customerKeys, func(rows driver.Rows) error {
		var r customerRow
		if err := rows.Scan(r.scanDest()...); err != nil {
			return err
		}
		customers[streamKey{r.WorkspaceID, r.CustomerID}] = r
		return nil
	})
	if err != nil {
		return err
	}
	b.loadedTickets, b.loadedCustomers = tickets, customers
	return nil
}

const loadChunk = 500

// loadRows reads the FINAL rows of table for keys, loadChunk keys per query.
// Ids are formatted by uuid.UUID.String, so inlining them is safe.
func loadRows(ctx context.Context, conn driver.Conn, table, columns, idColumn string, keys []streamKey, scan func(driver.Rows) error) error {
	for start := 0; start < len(keys); start += loadChunk {
		chunk := keys[start:min(start+loadChunk, len(keys))]
		workspaces, ids := map[string]bool{}, make([]string, 0, len(chunk))
		var wsList []string
		for _, k := range chunk {
			w := "toUUID('" + k.workspace.String() + "')"
			if !workspaces[w] {
				workspaces[w] = true
				wsList = append(wsList, w)
			}
			ids = append(ids, "toUUID('"+k.stream.String()+"')")
		}
		query := "SELECT " + columns + " FROM " + table + " FINAL WHERE workspace_id IN (" + strings.Join(wsList, ", ") +
			") AND " + idColumn + " IN (" + strings.Join(ids, ", ") + ")"
		rows, err := conn.Query(ctx, query)
		if err != nil {
			return chError("load "+table+" state", err)
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return chError("load "+table+" state", err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return chError("load "+table+" state", err)
		}
	}
	return nil
}

// build turns b's events into rows. It only touches memory: every previous
// state it needs was loaded before. Within b, each event sees the state the
// events before it produced; only the last state of each entity becomes a
// row, since an older version would lose to it under FINAL anyway.
func (p *Projector) build(b *batch) {
	tickets := newBuiltRows(b.loadedTickets, p.tickets, func(r *ticketRow) uint64 { return r.Version })
	customers := newBuiltRows(b.loadedCustomers, p.customers, func(r *customerRow) uint64 { return r.Version })
	b.eventTypes = map[string]int{}

	for i := range b.events {
		// The audit's description and the fold share one decoding.
		decoded := b.events[i].WithDecodedData()
		e := &decoded
		b.eventTypes[e.Type]++
		if p.tables.audit != "" {
			changes, err := helpdeskflow.FieldChanges(*e)
			if err != nil {
				p.m.errors.WithLabelValues(errKindApply).Inc()
				p.log.Error("projector: cannot describe event changes; audit row without them", append(helpdeskflow.EventLogAttrs(*e), helpdeskflow.LogError, err)...)
				changes = nil
			}
			b.audit = append(b.audit, auditRowOf(e, changes))
		}

		k := streamKey{e.WorkspaceID, e.StreamID}
		switch {
		case e.StreamType == helpdeskflow.StreamTicket && p.tables.tickets != "":
			prev, apply := tickets.previous(k, e, p.shouldApply)
			if !apply {
				continue
			}
			var t helpdeskflow.Ticket
			count, statusBefore := 0, ""
			// Most events leave the custom fields as they are: those keep
			// the previous row's JSON rather than decode and re-encode it.
			keepFields := prev != nil && keepsCustomFields(e)
			if prev != nil {
				from := *prev
				if keepFields {
					from.CustomFields = ""
				}
				t, count, statusBefore = from.ticket(), int(prev.MessageCount), prev.Status
			}
			before := len(t.Messages)
			if err := helpdeskflow.ApplyTicket(&t, *e); err != nil {
				p.applyFailed(e, err)
				continue
			}
			added := t.Messages[min(before, len(t.Messages)):]
			row := ticketRowOf(&t, count+len(added))
			if keepFields {
				row.CustomFields = prev.CustomFields
			}
			tickets.put(k, row)
			if p.tables.history != "" {
				b.history = append(b.history, historyRowOf(e, &t, statusBefore, added))
			}
			for _, m := range added {
				if p.tables.messages == "" {
					break
				}
				internal := uint8(0)
				if m.Internal {
					internal = 1
				}
				b.messages = append(b.messages, messageRow{
					WorkspaceID: e.WorkspaceID, TicketID: e.StreamID, MessageID: m.ID, Version: uint64(e.Version),
					AuthorType: m.AuthorType, Body: m.Body, BodyText: m.BodyText, Internal: internal,
					CreatedAtMs: m.CreatedAt.UnixMilli(),
				})
			}
		case e.StreamType == helpdeskflow.StreamCustomer && p.tables.customers != "":
			prev, apply := customers.previous(k, e, p.shouldApply)
			if !apply {
				continue
			}
			var c helpdeskflow.Customer
			if prev != nil {
				c = prev.customer()
			}
			if err := helpdeskflow.ApplyCustomer(&c, *e); err != nil {
				p.applyFailed(e, err)
				continue
			}
			customers.put(k, customerRowOf(&c))
		default:
			// Workspace streams (and any stream type this build does not
			// know) only feed the audit log.
		}
	}

	b.tickets, b.customers = tickets.finish(), customers.finish()
	b.loadedTickets, b.loadedCustomers = nil, nil
}

// keepsCustomFields reports whether applying e to a ticket certainly
// leaves its custom fields as they are: an event type that never changes
// them, or a ticket.updated whose data cannot name custom_fields: no
// "field" in any ASCII case, no escape and no byte beyond ASCII
// (encoding/json matches keys without regard to case, some non-ASCII
// letters included). Anything else is decoded and applied in full.
func keepsCustomFields(e *helpdeskflow.Event) bool {
	switch e.Type {
	case helpdeskflow.EventTicketMessageAdded, helpdeskflow.EventTicketCustomerChanged,
		helpdeskflow.EventTicketSLAPolicyApplied, helpdeskflow.EventTicketSLAWarning, helpdeskflow.EventTicketSLABreached,
		helpdeskflow.EventTicketNotificationRequested:
		return true
	case helpdeskflow.EventTicketUpdated:
		return !bytes.ContainsFunc(e.Data, func(r rune) bool { return r == '\\' || r >= utf8.RuneSelf }) &&
			!containsFoldASCII(e.Data, "field")
	}
	return false
}

// containsFoldASCII reports whether data contains word (lower-case ASCII)
// in any ASCII case.
func containsFoldASCII(data []byte, word string) bool {
	for i := 0; i+len(word) <= len(data); i++ {
		j := 0
		for j < len(word) && data[i+j]|0x20 == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

// shouldApply decides whether e changes its entity row: not when the row
// already has e's version or a later one (a redelivery), and not when e
// continues a stream whose earlier events were never projected.
func (p *Projector) shouldApply(e *helpdeskflow.Event, found bool, version uint64) bool {
	if e.Version <= 0 {
		p.m.errors.WithLabelValues(errKindApply).Inc()
		p.log.Error("projector: event without a positive version; entity row skipped", helpdeskflow.EventLogAttrs(*e)...)
		return false
	}
	if found && uint64(e.Version) <= version {
		p.m.skipped.WithLabelValues(skipStale).Inc()
		return false
	}
	if !found && e.Version > 1 {
		p.m.skipped.WithLabelValues(skipMissingState).Inc()
		p.log.Warn("projector: event continues a stream that is not projected; entity row skipped", helpdeskflow.EventLogAttrs(*e)...)
		return false
	}
	return true
}

func (p *Projector) applyFailed(e *helpdeskflow.Event, err error) {
	// An event type the root package does not know (yet) comes from a newer
	// producer; it is not a broken event.
	if errors.Is(err, helpdeskflow.ErrUnknownEventType) {
		p.m.skipped.WithLabelValues(skipUnknownType).Inc()
		p.log.Debug("projector: event type changes no projected row", helpdeskflow.EventLogAttrs(*e)...)
		return
	}
	p.m.errors.WithLabelValues(errKindApply).Inc()
	p.log.Error("projector: cannot apply event; entity row skipped, audit row kept", append(helpdeskflow.EventLogAttrs(*e), helpdeskflow.LogError, err)...)
}

// insert writes b's rows to p.tables, each table at most once however
// often it is retried. The ticket rows go in only after the other rows are
// in, so a ticket row at version v in ClickHouse means the message rows of
// its events up to v are in too: a fold after a crash (the projector's
// redelivered batch, a resumed rebuild) loads that row and skips the
// events it holds, and must not lose the messages of an insert the crash
// cut short.
func (p *Projector) insert(ctx context.Context, b *batch) error {
	if err := p.insertConcurrently(ctx, b, p.otherTables(b)); err != nil {
		return err
	}
	return p.insertConcurrently(ctx, b, p.ticketTables(b))
}

// ticketTables are b's ticket rows for tickets and its copies, which share
// one set of column slices (the inserts only read them).
func (p *Projector) ticketTables(b *batch) []tableRows {
	values := sync.OnceValue(func() []any { return ticketColumnValues(b.tickets) })
	var out []tableRows
	for _, name := range append([]string{p.tables.tickets}, p.tables.ticketCopies...) {
		out = append(out, tableRows{name, ticketColumns, len(b.tickets), values})
	}
	return out
}

// otherTables are b's rows of the tables other than tickets'.
func (p *Projector) otherTables(b *batch) []tableRows {
	t := p.tables
	return []tableRows{
		{t.customers, customerColumns, len(b.customers), func() []any { return customerColumnValues(b.customers) }},
		{t.messages, messageColumns, len(b.messages), func() []any { return messageColumnValues(b.messages) }},
		{t.audit, auditColumns, len(b.audit), func() []any { return auditColumnValues(b.audit) }},
		{t.history, historyColumns, len(b.history), func() []any { return historyColumnValues(b.history) }},
	}
}

// tableRows are the rows of one table of a batch, column by column.
type tableRows struct {
	name, columns string
	n             int
	values        func() []any
}

// insertConcurrently writes the tables of b that have a name, rows and are
// not written yet.
func (p *Projector) insertConcurrently(ctx context.Context, b *batch, tables []tableRows) error {
	// The tables are independent, so they are written concurrently: a
	// flush takes as long as its slowest insert, not the sum. A table that
	// made it is not inserted again when the batch is retried.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	if b.inserted == nil {
		b.inserted = map[string]bool{}
	}
	// Which tables to write is decided before any insert starts: the
	// goroutines below write b.inserted.
	pending := tables[:0]
	for _, t := range tables {
		if t.name != "" && t.n > 0 && !b.inserted[t.name] {
			pending = append(pending, t)
		}
	}
	for _, t := range pending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := insertColumns(ctx, p.cfg.ClickHouse, t.name, t.columns, t.values())
			p.m.insertDuration.WithLabelValues(t.name).Observe(time.Since(start).Seconds())
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			b.inserted[t.name] = true
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// insertColumns inserts into table the rows whose columns (named in
// columns, in order) are values, one slice per column: clickhouse-go
// takes a column as one slice for about half the CPU and a third of the
// allocations of row-by-row appends (BenchmarkInsertAuditRows).
func insertColumns(ctx context.Context, conn driver.Conn, table, columns string, values []any) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+columns+")")
	if err != nil {
		return chError("insert into "+table, err)
	}
	defer batch.Close()
	for i, v := range values {
		if err := AppendColumn(batch.Column(i), v); err != nil {
			return chError("insert into "+table, err)
		}
	}
	if err := batch.Send(); err != nil {
		return chError("insert into "+table, err)
	}
	return nil
}

// AppendColumn appends the values of one column, a slice of them, to col,
// as every insert of this package does (the bench's bulk-insert baseline
// uses it to insert the same way). An Array(String) column takes its rows
// one by one: given the whole [][]string, clickhouse-go walks every row and
// string by reflection, which took half the insert's CPU in a rebuild's
// profile; a []string row takes its path without reflection.
func AppendColumn(col driver.BatchColumn, values any) error {
	rows, ok := values.([][]string)
	if !ok {
		return col.Append(values)
	}
	for _, row := range rows {
		if err := col.AppendRow(row); err != nil {
			return err
		}
	}
	return nil
}

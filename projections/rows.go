package projections

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// streamKey identifies a stream within its workspace.
type streamKey struct {
	workspace uuid.UUID
	stream    uuid.UUID
}

// ticketRow is one row of the tickets table.
type ticketRow struct {
	WorkspaceID  uuid.UUID
	TicketID     uuid.UUID
	Version      uint64
	Subject      string
	Status       string
	Priority     string
	Type         string
	Channel      string
	Tags         []string
	CustomerID   uuid.UUID
	AssigneeID   string
	Team         string
	ExternalID   string
	CustomFields string
	MessageCount uint32
	CreatedAtMs  int64
	UpdatedAtMs  int64
}

const ticketColumns = "workspace_id, ticket_id, version, subject, status, priority, type, channel, tags, customer_id, " +
	"assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms"

// ticketColumnValues is rows column by column, in ticketColumns' order.
func ticketColumnValues(rows []ticketRow) []any {
	return []any{
		column(rows, func(r *ticketRow) uuid.UUID { return r.WorkspaceID }),
		column(rows, func(r *ticketRow) uuid.UUID { return r.TicketID }),
		column(rows, func(r *ticketRow) uint64 { return r.Version }),
		column(rows, func(r *ticketRow) string { return r.Subject }),
		column(rows, func(r *ticketRow) string { return r.Status }),
		column(rows, func(r *ticketRow) string { return r.Priority }),
		column(rows, func(r *ticketRow) string { return r.Type }),
		column(rows, func(r *ticketRow) string { return r.Channel }),
		column(rows, func(r *ticketRow) []string { return nonNil(r.Tags) }),
		column(rows, func(r *ticketRow) uuid.UUID { return r.CustomerID }),
		column(rows, func(r *ticketRow) string { return r.AssigneeID }),
		column(rows, func(r *ticketRow) string { return r.Team }),
		column(rows, func(r *ticketRow) string { return r.ExternalID }),
		column(rows, func(r *ticketRow) string { return r.CustomFields }),
		column(rows, func(r *ticketRow) uint32 { return r.MessageCount }),
		column(rows, func(r *ticketRow) int64 { return r.CreatedAtMs }),
		column(rows, func(r *ticketRow) int64 { return r.UpdatedAtMs }),
	}
}

func (r *ticketRow) scanDest() []any {
	return []any{&r.WorkspaceID, &r.TicketID, &r.Version, &r.Subject, &r.Status, &r.Priority, &r.Type, &r.Channel, &r.Tags, &r.CustomerID,
		&r.AssigneeID, &r.Team, &r.ExternalID, &r.CustomFields, &r.MessageCount, &r.CreatedAtMs, &r.UpdatedAtMs}
}

// ticket returns the row as a domain Ticket without messages or customer
// details. Empty optional strings become nil.
func (r *ticketRow) ticket() helpdeskflow.Ticket {
	return helpdeskflow.Ticket{
		ID: r.TicketID, WorkspaceID: r.WorkspaceID,
		Subject: r.Subject, Status: r.Status, Priority: r.Priority, Type: r.Type, Channel: r.Channel,
		Tags: slices.Clone(nonNil(r.Tags)), AssigneeID: optional(r.AssigneeID), Team: optional(r.Team), ExternalID: optional(r.ExternalID),
		CustomFields: decodeFields(r.CustomFields), CustomerID: r.CustomerID,
		Version:   int64(r.Version),
		CreatedAt: time.UnixMilli(r.CreatedAtMs).UTC(), UpdatedAt: time.UnixMilli(r.UpdatedAtMs).UTC(),
	}
}

func ticketRowOf(t *helpdeskflow.Ticket, messageCount int) ticketRow {
	return ticketRow{
		WorkspaceID: t.WorkspaceID, TicketID: t.ID, Version: uint64(t.Version),
		Subject: t.Subject, Status: t.Status, Priority: t.Priority, Type: t.Type, Channel: t.Channel,
		Tags: nonNil(t.Tags), CustomerID: t.CustomerID,
		AssigneeID: deref(t.AssigneeID), Team: deref(t.Team), ExternalID: deref(t.ExternalID),
		CustomFields: encodeFields(t.CustomFields), MessageCount: uint32(messageCount),
		CreatedAtMs: t.CreatedAt.UnixMilli(), UpdatedAtMs: t.UpdatedAt.UnixMilli(),
	}
}

// customerRow is one row of the customers table.
type customerRow struct {
	WorkspaceID  uuid.UUID
	CustomerID   uuid.UUID
	Version      uint64
	Email        string
	Name         string
	Tags         []string
	CustomFields string
	CreatedAtMs  int64
	UpdatedAtMs  int64
	MergedInto   string // the target's id, "" when not merged
}

const customerColumns = "workspace_id, customer_id, version, email, name, tags, custom_fields, created_at_ms, updated_at_ms, merged_into"

// customerColumnValues is rows column by column, in customerColumns'
// order.
func customerColumnValues(rows []customerRow) []any {
	return []any{
		column(rows, func(r *customerRow) uuid.UUID { return r.WorkspaceID }),
		column(rows, func(r *customerRow) uuid.UUID { return r.CustomerID }),
		column(rows, func(r *customerRow) uint64 { return r.Version }),
		column(rows, func(r *customerRow) string { return r.Email }),
		column(rows, func(r *customerRow) string { return r.Name }),
		column(rows, func(r *customerRow) []string { return nonNil(r.Tags) }),
		column(rows, func(r *customerRow) string { return r.CustomFields }),
		column(rows, func(r *customerRow) int64 { return r.CreatedAtMs }),
		column(rows, func(r *customerRow) int64 { return r.UpdatedAtMs }),
		column(rows, func(r *customerRow) string { return r.MergedInto }),
	}
}

func (r *customerRow) scanDest() []any {
	return []any{&r.WorkspaceID, &r.CustomerID, &r.Version, &r.Email, &r.Name, &r.Tags, &r.CustomFields, &r.CreatedAtMs, &r.UpdatedAtMs, &r.MergedInto}
}

func (r *customerRow) customer() helpdeskflow.Customer {
	c := helpdeskflow.Customer{
		ID: r.CustomerID, WorkspaceID: r.WorkspaceID, Email: r.Email, Name: r.Name,
		Tags: slices.Clone(nonNil(r.Tags)), CustomFields: decodeFields(r.CustomFields), Version: int64(r.Version),
		CreatedAt: time.UnixMilli(r.CreatedAtMs).UTC(), UpdatedAt: time.UnixMilli(r.UpdatedAtMs).UTC(),
	}
	if id, err := uuid.Parse(r.MergedInto); err == nil {
		c.MergedInto = &id
	}
	return c
}

func customerRowOf(c *helpdeskflow.Customer) customerRow {
	row := customerRow{
		WorkspaceID: c.WorkspaceID, CustomerID: c.ID, Version: uint64(c.Version),
		Email: c.Email, Name: c.Name, Tags: nonNil(c.Tags), CustomFields: encodeFields(c.CustomFields),
		CreatedAtMs: c.CreatedAt.UnixMilli(), UpdatedAtMs: c.UpdatedAt.UnixMilli(),
	}
	if c.MergedInto != nil {
		row.MergedInto = c.MergedInto.String()
	}
	return row
}

// messageRow is one row of the ticket_messages table.
type messageRow struct {
	WorkspaceID uuid.UUID
	TicketID    uuid.UUID
	MessageID   uuid.UUID
	Version     uint64
	AuthorType  string
	Body        string
	BodyText    string
	Internal    uint8
	CreatedAtMs int64
}

const messageColumns = "workspace_id, ticket_id, message_id, version, author_type, body, body_text, internal, created_at_ms"

// messageColumnValues is rows column by column, in messageColumns' order.
func messageColumnValues(rows []messageRow) []any {
	return []any{
		column(rows, func(r *messageRow) uuid.UUID { return r.WorkspaceID }),
		column(rows, func(r *messageRow) uuid.UUID { return r.TicketID }),
		column(rows, func(r *messageRow) uuid.UUID { return r.MessageID }),
		column(rows, func(r *messageRow) uint64 { return r.Version }),
		column(rows, func(r *messageRow) string { return r.AuthorType }),
		column(rows, func(r *messageRow) string { return r.Body }),
		column(rows, func(r *messageRow) string { return r.BodyText }),
		column(rows, func(r *messageRow) uint8 { return r.Internal }),
		column(rows, func(r *messageRow) int64 { return r.CreatedAtMs }),
	}
}

// auditRow is one row of the audit_log table.
type auditRow struct {
	WorkspaceID   uuid.UUID
	StreamID      uuid.UUID
	StreamType    string
	Version       uint64
	EventID       uuid.UUID
	EventType     string
	SchemaVersion uint16
	ActorType     string
	ActorID       string
	Channel       string
	RequestID     string
	RuleID        string
	CausationID   string
	CorrelationID string
	ChangedFields []string
	OldValues     []string
	NewValues     []string
	Data          string
	OccurredAt    time.Time
	OccurredAtMs  int64
}

const auditColumns = "workspace_id, stream_id, stream_type, version, event_id, event_type, schema_version, " +
	"actor_type, actor_id, channel, request_id, rule_id, causation_id, correlation_id, " +
	"changed_fields, old_values, new_values, data, occurred_at, occurred_at_ms"

// auditColumnValues is rows column by column, in auditColumns' order.
func auditColumnValues(rows []auditRow) []any {
	return []any{
		column(rows, func(r *auditRow) uuid.UUID { return r.WorkspaceID }),
		column(rows, func(r *auditRow) uuid.UUID { return r.StreamID }),
		column(rows, func(r *auditRow) string { return r.StreamType }),
		column(rows, func(r *auditRow) uint64 { return r.Version }),
		column(rows, func(r *auditRow) uuid.UUID { return r.EventID }),
		column(rows, func(r *auditRow) string { return r.EventType }),
		column(rows, func(r *auditRow) uint16 { return r.SchemaVersion }),
		column(rows, func(r *auditRow) string { return r.ActorType }),
		column(rows, func(r *auditRow) string { return r.ActorID }),
		column(rows, func(r *auditRow) string { return r.Channel }),
		column(rows, func(r *auditRow) string { return r.RequestID }),
		column(rows, func(r *auditRow) string { return r.RuleID }),
		column(rows, func(r *auditRow) string { return r.CausationID }),
		column(rows, func(r *auditRow) string { return r.CorrelationID }),
		column(rows, func(r *auditRow) []string { return nonNil(r.ChangedFields) }),
		column(rows, func(r *auditRow) []string { return nonNil(r.OldValues) }),
		column(rows, func(r *auditRow) []string { return nonNil(r.NewValues) }),
		column(rows, func(r *auditRow) string { return r.Data }),
		column(rows, func(r *auditRow) time.Time { return r.OccurredAt }),
		column(rows, func(r *auditRow) int64 { return r.OccurredAtMs }),
	}
}

// column is one field of every row, for a column-by-column insert
// (insertColumns).
func column[R, T any](rows []R, field func(*R) T) []T {
	out := make([]T, len(rows))
	for i := range rows {
		out[i] = field(&rows[i])
	}
	return out
}

// auditRowOf describes e for the audit log. changes may be empty (an event
// that changes no field, or one this version cannot describe).
func auditRowOf(e *helpdeskflow.Event, changes []helpdeskflow.FieldChange) auditRow {
	r := auditRow{
		WorkspaceID: e.WorkspaceID, StreamID: e.StreamID, StreamType: e.StreamType, Version: uint64(e.Version),
		EventID: e.ID, EventType: e.Type, SchemaVersion: uint16(e.SchemaVersion),
		ActorType: e.Metadata.Actor.Type, ActorID: e.Metadata.Actor.ID, Channel: e.Metadata.Channel,
		RequestID: e.Metadata.RequestID, RuleID: e.Metadata.RuleID,
		CausationID: e.Metadata.CausationID, CorrelationID: e.Metadata.CorrelationID,
		ChangedFields: make([]string, 0, len(changes)),
		OldValues:     make([]string, 0, len(changes)),
		NewValues:     make([]string, 0, len(changes)),
		Data:          string(e.Data),
		OccurredAt:    e.OccurredAt.UTC().Truncate(time.Second),
		OccurredAtMs:  e.OccurredAt.UnixMilli(),
	}
	if len(e.Data) == 0 {
		r.Data = "null"
	}
	for _, c := range changes {
		r.ChangedFields = append(r.ChangedFields, c.Field)
		r.OldValues = append(r.OldValues, jsonText(c.Old))
		r.NewValues = append(r.NewValues, jsonText(c.New))
	}
	return r
}

func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	return string(raw)
}

func encodeFields(m map[string]any) string {
	if len(m) == 0 {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		// The map came out of json.Unmarshal, so it always encodes; keep
		// the row rather than lose the event if it ever does not.
		return "{}"
	}
	return string(b)
}

func decodeFields(s string) map[string]any {
	m := map[string]any{}
	if s != "" {
		_ = json.Unmarshal([]byte(s), &m)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// builtRows are the rows build makes for one kind of entity: the newest
// state of each stream that b's events changed, in the order the streams
// first changed.
type builtRows[R any] struct {
	loaded  map[streamKey]R // loaded from ClickHouse for this batch
	cache   *lru[streamKey, R]
	version func(*R) uint64
	rows    map[streamKey]*R
	order   []streamKey
}

func newBuiltRows[R any](loaded map[streamKey]R, cache *lru[streamKey, R], version func(*R) uint64) *builtRows[R] {
	return &builtRows[R]{loaded: loaded, cache: cache, version: version, rows: map[streamKey]*R{}}
}

// previous returns the newest known row of stream k (nil when there is
// none): the one this batch already built, else the one loaded from
// ClickHouse for this batch, else the cached one; and whether e is to be
// applied to it (shouldApply).
func (w *builtRows[R]) previous(k streamKey, e *helpdeskflow.Event, shouldApply func(*helpdeskflow.Event, bool, uint64) bool) (*R, bool) {
	var prev *R
	if r, ok := w.rows[k]; ok {
		prev = r
	} else if r, ok := w.loaded[k]; ok {
		prev = &r
	} else if r, ok := w.cache.get(k); ok {
		prev = &r
	}
	var version uint64
	if prev != nil {
		version = w.version(prev)
	}
	return prev, shouldApply(e, prev != nil, version)
}

// put makes row the newest state of stream k.
func (w *builtRows[R]) put(k streamKey, row R) {
	if _, ok := w.rows[k]; !ok {
		w.order = append(w.order, k)
	}
	w.rows[k] = &row
}

// finish caches the built rows and returns them in order.
func (w *builtRows[R]) finish() []R {
	rows := make([]R, 0, len(w.order))
	for _, k := range w.order {
		row := *w.rows[k]
		rows = append(rows, row)
		w.cache.put(k, row)
	}
	return rows
}

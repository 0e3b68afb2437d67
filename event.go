package helpdeskflow

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Stored event type names. They are explicit constants, never derived from Go
// type names, and each event also carries a schema version of its data.
const (
	EventWorkspaceCreated      = "workspace.created"
	EventAPIKeyCreated         = "api_key.created"
	EventAPIKeyRevoked         = "api_key.revoked"
	EventIPBlocklistUpdated    = "workspace.ip_blocklist_updated"
	EventRateLimitsUpdated     = "workspace.rate_limits_updated"
	EventCustomerCreated       = "customer.created"
	EventTicketCreated         = "ticket.created"
	EventTicketMessageAdded    = "ticket.message_added"
	EventTicketUpdated         = "ticket.updated"
	EventTicketCustomerChanged = "ticket.customer_changed"
	EventCustomerUpdated       = "customer.updated"
	EventCustomerMerged        = "customer.merged"
	EventAutomationCreated     = "automation.created"
	EventAutomationUpdated     = "automation.updated"
	EventAutomationDeleted     = "automation.deleted"
	EventSLAPolicyCreated      = "sla_policy.created"
	EventSLAPolicyUpdated      = "sla_policy.updated"
	EventSLAPolicyDeleted      = "sla_policy.deleted"
	// EventTicketNotificationRequested is an automation's asynchronous
	// action (such as notify_slack) for the dispatcher to carry out.
	EventTicketNotificationRequested = "ticket.notification_requested"
	CurrentEventSchemaVersion        = 1
)

// Stream types: the kind of entity a stream holds.
const (
	StreamWorkspace = "workspace"
	StreamCustomer  = "customer"
	StreamTicket    = "ticket"
	// StreamAutomation and StreamSLAPolicy hold one rule or policy each:
	// its created, updated and deleted events, each with the whole
	// definition, so every version stays readable.
	StreamAutomation = "automation"
	StreamSLAPolicy  = "sla_policy"
)

// StreamTypes lists every stream type (a test keeps it complete).
var StreamTypes = []string{StreamWorkspace, StreamCustomer, StreamTicket, StreamAutomation, StreamSLAPolicy, StreamWebhook}

// VisibleToAgents reports whether agent keys may read the events of a
// stream type in the change feed: tickets and customers only. The
// workspace's configuration (the workspace stream with its API keys,
// settings and integrations, automation rules, SLA policies, webhooks) is
// admin-only, and so is any stream type not named here.
func VisibleToAgents(streamType string) bool {
	return streamType == StreamTicket || streamType == StreamCustomer
}

// Channels say through which path a change came in.
const (
	ChannelAPI         = "api"
	ChannelAutomation  = "automation"
	ChannelAgent       = "agent"
	ChannelIntegration = "integration"
	ChannelSystem      = "system"
)

// Actor types say who made a change.
const (
	ActorAPIKey      = "api_key"
	ActorAgent       = "agent"
	ActorRule        = "rule"
	ActorIntegration = "integration"
	ActorSystem      = "system"
)

// Actor identifies who caused an event.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// Metadata travels with every event: who did it, through which channel, and
// the request, causation and correlation ids that tie events together.
type Metadata struct {
	Actor   Actor  `json:"actor"`
	Channel string `json:"channel"`
	// APIKeyID is the API key that made the request when the actor is not
	// the key itself: an agent the key acted for (X-HDF-On-Behalf-Of).
	APIKeyID      string `json:"api_key_id,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
	RuleID        string `json:"rule_id,omitempty"`
	RuleVersion   int64  `json:"rule_version,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
}

// NewEvent is an event a command decided on and that is not stored yet.
// OccurredAt is stored as given (microsecond precision, as Postgres keeps
// it), so a command can answer with the same time a later read shows.
type NewEvent struct {
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	OccurredAt    time.Time
	// decoded is the value Data was encoded from (NewEventOf), so that
	// folding the command's own events does not decode them again.
	decoded any
}

// Stored is the event as the store keeps it at version of stream ref with
// metadata md, for answering without reading it back. It keeps the value
// NewEventOf encoded, so ApplyTicket and ApplyCustomer use it instead of
// decoding Data.
func (e NewEvent) Stored(ref StreamRef, version int64, md Metadata) Event {
	return Event{
		ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, StreamID: ref.ID, StreamType: ref.Type,
		Version: version, WorkspaceID: ref.WorkspaceID, OccurredAt: e.OccurredAt, Data: e.Data, Metadata: md,
		decoded: e.decoded,
	}
}

// dataOf returns e's data as a T: the value it was encoded from when e
// was built by this process (see NewEvent.Stored), otherwise decoded from
// Data. Appliers never change what they are given in place (they replace
// slices and copy maps), so sharing the command's value is safe.
func dataOf[T any](e Event) (T, error) {
	if d, ok := e.decoded.(T); ok {
		return d, nil
	}
	var d T
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return d, &Error{Code: EInternal, Message: "decode " + e.Type, Err: err}
	}
	return d, nil
}

// WithDecodedData returns e with its data decoded once, for a caller that
// both describes an event (FieldChanges) and folds it (ApplyTicket,
// ApplyCustomer): both then use the decoded value instead of decoding Data
// each. Data that does not decode is left as it is, so the call that uses
// it reports the error; an event already carrying its value, and a type
// neither needs decoded, are returned unchanged.
func (e Event) WithDecodedData() Event {
	if e.decoded != nil {
		return e
	}
	switch e.Type {
	case EventTicketUpdated:
		e.decoded = decodedOrNil[TicketUpdated](e)
	case EventCustomerUpdated:
		e.decoded = decodedOrNil[CustomerUpdated](e)
	}
	return e
}

// decodedOrNil is e's data as a T, or nil when it does not decode.
func decodedOrNil[T any](e Event) any {
	d, err := dataOf[T](e)
	if err != nil {
		return nil
	}
	return d
}

// Event is a stored event. Version is its position in its stream, starting
// at 1 and contiguous. Position orders events across streams in commit order.
type Event struct {
	ID            uuid.UUID       `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	StreamID      uuid.UUID       `json:"stream_id"`
	StreamType    string          `json:"stream_type"`
	Version       int64           `json:"version"`
	WorkspaceID   uuid.UUID       `json:"workspace_id"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Data          json.RawMessage `json:"data"`
	Metadata      Metadata        `json:"metadata"`
	Position      Position        `json:"-"`
	// decoded: see NewEvent.Stored.
	decoded any
}

// Position is an event's place in the global commit order: the id of the
// transaction that wrote it, then its sequence number within the table.
type Position struct {
	TxID uint64
	Seq  int64
}

// Less reports whether p comes before q in commit order.
func (p Position) Less(q Position) bool {
	if p.TxID != q.TxID {
		return p.TxID < q.TxID
	}
	return p.Seq < q.Seq
}

// NewEventOf marshals data (with MarshalJSON: compact, no HTML escaping)
// into a NewEvent of the given type with a fresh random id, the current
// schema version and the current time.
func NewEventOf(eventType string, data any) (NewEvent, error) {
	raw, err := MarshalJSON(data)
	if err != nil {
		return NewEvent{}, &Error{Code: EInternal, Message: "encode event", Err: err}
	}
	return NewEvent{ID: uuid.New(), Type: eventType, SchemaVersion: CurrentEventSchemaVersion, Data: raw,
		OccurredAt: time.Now().UTC().Truncate(time.Microsecond), decoded: data}, nil
}

// StreamRef names a stream: its id, the workspace it belongs to and the kind
// of entity it holds (one of the Stream* constants).
type StreamRef struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	Type        string
}

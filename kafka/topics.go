package kafka

// Kafka topics and the record headers of events. A record's key is the
// stream id (so one stream's events stay in order on one partition), its
// value the event's data as stored, and the rest of the event (the
// envelope) is in headers: see NewRecord.
const (
	TopicEvents      = "helpdeskflow.events"
	TopicAPIRequests = "helpdeskflow.api-requests"
	// TopicServiceFacts carries the service facts (helpdeskflow.
	// WebhookAttemptFact, helpdeskflow.MailSyncFact: the JSON value), the
	// kind in HeaderFact.
	TopicServiceFacts = "helpdeskflow.service-facts"
	// HeaderFact is the kind of a service fact record
	// (helpdeskflow.FactWebhookAttempt, helpdeskflow.FactMailSync).
	HeaderFact = "hdf-fact"

	HeaderEventID     = "hdf-event-id"
	HeaderEventType   = "hdf-event-type"
	HeaderVersion     = "hdf-version"
	HeaderWorkspaceID = "hdf-workspace-id"
	// HeaderClaimCheck marks a record that stands in for an event the
	// broker refused (too large, invalid): it names the event without its
	// data, and consumers load the event from the event store by id.
	HeaderClaimCheck = "hdf-claim-check"

	// HeaderFormat is the wire format of an event record: FormatData
	// ("2"), the value is the event's data and the envelope is in the
	// headers below. A record without it is of the first format, whose
	// value is the JSON encoding of the whole event (helpdeskflow.Event);
	// Decode reads both.
	HeaderFormat = "hdf-format"
	FormatData   = "2"

	HeaderSchemaVersion = "hdf-schema-version"
	HeaderStreamID      = "hdf-stream-id"
	HeaderStreamType    = "hdf-stream-type"
	// HeaderOccurredAt is RFC 3339 in UTC with up to nanoseconds.
	HeaderOccurredAt = "hdf-occurred-at"
	// HeaderPosition is the event's place in commit order,
	// "<transaction id>.<sequence number>".
	HeaderPosition = "hdf-position"

	// The event's metadata (helpdeskflow.Metadata), one header per field;
	// an empty field (a zero rule version) has no header.
	HeaderActorType     = "hdf-actor-type"
	HeaderActorID       = "hdf-actor-id"
	HeaderChannel       = "hdf-channel"
	HeaderAPIKeyID      = "hdf-api-key-id"
	HeaderRequestID     = "hdf-request-id"
	HeaderRuleID        = "hdf-rule-id"
	HeaderRuleVersion   = "hdf-rule-version"
	HeaderCausationID   = "hdf-causation-id"
	HeaderCorrelationID = "hdf-correlation-id"
)

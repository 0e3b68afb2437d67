package kafka

// Kafka topics and the record headers the relay sets. A record's key is the
// stream id (so one stream's events stay in order on one partition) and its
// value is the JSON encoding of Event.
const (
	TopicEvents      = "helpdeskflow.events"
	TopicAPIRequests = "helpdeskflow.api-requests"

	HeaderEventID     = "hdf-event-id"
	HeaderEventType   = "hdf-event-type"
	HeaderVersion     = "hdf-version"
	HeaderWorkspaceID = "hdf-workspace-id"
	// HeaderClaimCheck marks a record that stands in for an event the
	// broker refused (too large, invalid): its value is the event without
	// data, and consumers load the event from the event store by id.
	HeaderClaimCheck = "hdf-claim-check"
)

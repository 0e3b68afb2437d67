package helpdeskflow

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Size limits of events. Every event travels as one Kafka record, and a
// record the broker refuses would stop the relay for every workspace, so the
// size of each event is checked before it is stored: the event store
// refuses any writer's oversized append (TooLargeError), and commands name
// the request field that makes it large.
const (
	// MaxEventBytes is the most the encoding of one event (an Event, as
	// GET /v1/events shows it in JSON and as its Kafka record) may take. The
	// largest request the API allows fits: a 50,000-character message body
	// of 4-byte characters, or of characters that sanitizing expands (such
	// as 50,000 '<'), stored as body and body_text.
	MaxEventBytes = 900_000
	// MaxAppendBytes caps the encodings of all the events one command
	// appends, summed (a customer merge appends one event per ticket).
	MaxAppendBytes = 16 << 20
	// MaxRecordBytes is the largest record batch the producers send
	// (franz-go's ProducerBatchMaxBytes, set explicitly): an event of
	// MaxEventBytes with its key and headers fits in it. The broker's
	// message.max.bytes (topic: max.message.bytes) must be at least this;
	// Kafka's default, 1,048,588, is.
	MaxRecordBytes = 1_000_000
)

// eventEnvelopeBytes bounds what the encoding of an Event adds to its data,
// metadata, type and stream type: in JSON the keys and punctuation, three
// uuids, two integers of up to 20 digits and the RFC 3339 time; in a Kafka
// record (kafka.NewRecord, whose metadata is in headers) the key, the
// header names, four uuids, four integers and the time (tests in both
// places hold it).
const eventEnvelopeBytes = 400

// EventSize returns an upper bound of the length of the JSON encoding of an
// event of type eventType on a stream of streamType, with data and the
// encoded metadata, and of its Kafka record: what GET /v1/events shows and
// what the relay publishes for it. data must be compact and not
// HTML-escaped, as MarshalJSON makes it. Postgres returns it as appended;
// events stored while events.data was jsonb come back in a longer form, and
// the relay compacts the data of such a record over the limit.
func EventSize(eventType, streamType string, data, metadata []byte) int {
	return len(data) + len(metadata) + len(eventType) + len(streamType) + eventEnvelopeBytes
}

// MarshalJSON is json.Marshal without HTML escaping. Events, Kafka records
// and webhook bodies are JSON, not HTML: '<', '>' and '&' stay one byte each
// instead of becoming six-byte \u003c escapes.
func MarshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// TooLargeError is the cause of the EPayloadTooLarge error with which the
// event store refuses an append: Event is over MaxEventBytes (Size is its
// size), or, with Total set, takes one transaction's events over
// MaxAppendBytes (Size is the total with it). Callers that know the
// request name its field from Event (errors.As).
type TooLargeError struct {
	Event NewEvent
	Size  int
	Total bool
}

// Error implements the error interface.
func (e *TooLargeError) Error() string {
	if e.Total {
		return fmt.Sprintf("the events of one request would take %d bytes or more, over the limit of %d bytes", e.Size, MaxAppendBytes)
	}
	return fmt.Sprintf("a %s event of %d bytes is over the limit of %d bytes", e.Event.Type, e.Size, MaxEventBytes)
}

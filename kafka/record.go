// Records are the wire format of events on Kafka, written by the
// relay and read by every consumer of the events topic: one record per
// event, keyed by its stream id (so a stream's events stay in order on one
// partition), with the event's id, type, version and workspace in headers
// and its JSON encoding (helpdeskflow.MarshalJSON) as the value.
//
// A record the broker refuses for good (too large for its message.max.bytes,
// or invalid) travels as a claim check instead: the same key and headers,
// plus HeaderClaimCheck, and the event without its data as the value.
// Consumers load such events from the event store by id (Decode), so they
// keep their place in the stream's order and nothing is lost.

package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
)

// NewRecord returns the record of e on topic. It fails only for an event that
// cannot be encoded (a time outside years 0–9999).
func NewRecord(topic string, e helpdeskflow.Event) (*kgo.Record, error) {
	value, err := helpdeskflow.MarshalJSON(e)
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "encode event " + e.ID.String(), Err: err}
	}
	return &kgo.Record{Topic: topic, Key: []byte(e.StreamID.String()), Value: value, Headers: headers(e), Timestamp: e.OccurredAt}, nil
}

// ClaimCheck returns the record that stands in for e when the broker will
// not take e's own record, marked with HeaderClaimCheck. Its value names
// the event (id, type, stream, version, workspace) without data, metadata
// or time, so it is a few hundred bytes and encodes whatever e holds.
func ClaimCheck(topic string, e helpdeskflow.Event) *kgo.Record {
	value, _ := helpdeskflow.MarshalJSON(claim{ID: e.ID, Type: e.Type, StreamID: e.StreamID, StreamType: e.StreamType,
		Version: e.Version, WorkspaceID: e.WorkspaceID}) // uuids, strings and an integer always encode
	h := append(headers(e), kgo.RecordHeader{Key: HeaderClaimCheck, Value: []byte("true")})
	return &kgo.Record{Topic: topic, Key: []byte(e.StreamID.String()), Value: value, Headers: h, Timestamp: e.OccurredAt}
}

// claim is a claim check's value: the fields of helpdeskflow.Event that
// name the event.
type claim struct {
	ID          uuid.UUID `json:"id"`
	Type        string    `json:"type"`
	StreamID    uuid.UUID `json:"stream_id"`
	StreamType  string    `json:"stream_type"`
	Version     int64     `json:"version"`
	WorkspaceID uuid.UUID `json:"workspace_id"`
}

func headers(e helpdeskflow.Event) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: HeaderEventID, Value: []byte(e.ID.String())},
		{Key: HeaderEventType, Value: []byte(e.Type)},
		{Key: HeaderVersion, Value: []byte(strconv.FormatInt(e.Version, 10))},
		{Key: HeaderWorkspaceID, Value: []byte(e.WorkspaceID.String())},
	}
}

// IsClaimCheck reports whether r is a claim check.
func IsClaimCheck(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == HeaderClaimCheck {
			return true
		}
	}
	return false
}

// Loader loads stored events by id, in any order, leaving out ids it does
// not know (eventstore.Store.EventsByID).
type Loader interface {
	EventsByID(ctx context.Context, ids []uuid.UUID) ([]helpdeskflow.Event, error)
}

// ErrNotAnEvent is the cause of a record's decode error when its value is
// not a JSON event with a stream id and a positive version, and
// ErrClaimCheckUnresolved when it is a claim check whose event the store
// does not have (or when there is no Loader to ask).
var (
	ErrNotAnEvent           = errors.New("record is not an event")
	ErrClaimCheckUnresolved = errors.New("claim check names an event the event store does not have")
)

// Decode decodes records into events, in order. events[i] is valid when
// errs[i] is nil; a record that is not an event, or a claim check that
// cannot be resolved, gets an error (wrapping ErrNotAnEvent or
// ErrClaimCheckUnresolved) for the caller to log, count and skip. The
// events of claim checks are loaded with one call to loader; when that
// call fails, Decode returns its error and the caller retries the batch.
// loader may be nil when no claim check is expected (each then gets
// ErrClaimCheckUnresolved).
func Decode(ctx context.Context, records []*kgo.Record, loader Loader) (events []helpdeskflow.Event, errs []error, err error) {
	events = make([]helpdeskflow.Event, len(records))
	errs = make([]error, len(records))
	var claims []uuid.UUID
	for i, r := range records {
		var e helpdeskflow.Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			errs[i] = fmt.Errorf("%w: %v", ErrNotAnEvent, err)
			continue
		}
		if e.StreamID == uuid.Nil || e.Version < 1 {
			errs[i] = fmt.Errorf("%w: no stream id or no positive version", ErrNotAnEvent)
			continue
		}
		events[i] = e
		if IsClaimCheck(r) {
			claims = append(claims, e.ID)
		}
	}
	if len(claims) == 0 {
		return events, errs, nil
	}
	var loaded []helpdeskflow.Event
	if loader != nil {
		if loaded, err = loader.EventsByID(ctx, claims); err != nil {
			return nil, nil, err
		}
	}
	byID := make(map[uuid.UUID]helpdeskflow.Event, len(loaded))
	for _, e := range loaded {
		byID[e.ID] = e
	}
	for i, r := range records {
		if errs[i] != nil || !IsClaimCheck(r) {
			continue
		}
		e, ok := byID[events[i].ID]
		if !ok || e.StreamID != events[i].StreamID || e.Version != events[i].Version {
			errs[i] = fmt.Errorf("%w: event %s", ErrClaimCheckUnresolved, events[i].ID)
			continue
		}
		events[i] = e
	}
	return events, errs, nil
}

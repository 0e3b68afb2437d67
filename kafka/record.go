// Records are the wire format of events on Kafka, written by the relay and
// read by every consumer of the events topic: one record per event, keyed by
// its stream id (so a stream's events stay in order on one partition), with
// the event's data as stored as the value, untouched, and the rest of the
// event in headers (HeaderFormat FormatData): the relay encodes nothing but
// a few ids and numbers, and a consumer decodes no JSON to learn which
// event a record holds.
//
// A record the broker refuses for good (too large for its message.max.bytes,
// or invalid) travels as a claim check instead: the same key, the headers
// that name the event (id, type, stream, version, workspace) plus
// HeaderClaimCheck, and no value. Consumers load such events from the event
// store by id (Decode), so they keep their place in the stream's order and
// nothing is lost.
//
// Records of the first format (no HeaderFormat; the value is the JSON
// encoding of the whole event, and a claim check's value the JSON of the
// fields that name it) may still be in a topic written before an upgrade:
// Decode reads them too.

package kafka

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
)

// NewRecord returns the record of e on topic: e.Data as the value (shared,
// not copied) and the envelope in headers. It fails only for an event whose
// time is outside years 0–9999.
func NewRecord(topic string, e helpdeskflow.Event) (*kgo.Record, error) {
	if y := e.OccurredAt.Year(); y < 0 || y > 9999 {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "encode event " + e.ID.String(),
			Err: fmt.Errorf("occurred_at: year %d outside 0–9999", y)}
	}
	md := e.Metadata
	w := newHeaderWriter(e, len(md.Actor.Type)+len(md.Actor.ID)+len(md.Channel)+len(md.APIKeyID)+len(md.RequestID)+len(md.RuleID)+
		len(md.CausationID)+len(md.CorrelationID)+len(time.RFC3339Nano)+2*20+1+20)
	w.buf = e.OccurredAt.UTC().AppendFormat(w.buf, time.RFC3339Nano)
	w.end(HeaderOccurredAt)
	w.buf = appendPosition(w.buf, e.Position)
	w.end(HeaderPosition)
	w.text(HeaderActorType, md.Actor.Type)
	w.text(HeaderActorID, md.Actor.ID)
	w.text(HeaderChannel, md.Channel)
	w.text(HeaderAPIKeyID, md.APIKeyID)
	w.text(HeaderRequestID, md.RequestID)
	w.text(HeaderRuleID, md.RuleID)
	if md.RuleVersion != 0 {
		w.buf = strconv.AppendInt(w.buf, md.RuleVersion, 10)
		w.end(HeaderRuleVersion)
	}
	w.text(HeaderCausationID, md.CausationID)
	w.text(HeaderCorrelationID, md.CorrelationID)
	return w.record(topic, e, e.Data), nil
}

// ClaimCheck returns the record that stands in for e when the broker will
// not take e's own record, marked with HeaderClaimCheck: no value, and the
// headers that name the event (id, type, schema version, stream, version,
// workspace) without time, position or metadata, so it is a few hundred
// bytes and encodes whatever e holds.
func ClaimCheck(topic string, e helpdeskflow.Event) *kgo.Record {
	w := newHeaderWriter(e, 4)
	w.text(HeaderClaimCheck, "true")
	return w.record(topic, e, nil)
}

// RecordBytes is how many bytes of r count against the broker's record size
// limit, near enough: its key, value and headers.
func RecordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// headerWriter builds a record's key and header values in one buffer:
// each value is appended to buf and then named by end.
type headerWriter struct {
	buf  []byte
	keys [maxHeaders]string
	ends [maxHeaders]int
	n    int
}

// maxHeaders is the most headers a record of an event has.
const maxHeaders = 20

// newHeaderWriter starts the headers every record of e has (key, format,
// id, type, schema version, stream, version, workspace); extra is room for
// what the caller adds.
func newHeaderWriter(e helpdeskflow.Event, extra int) *headerWriter {
	w := &headerWriter{buf: make([]byte, 0, 4*36+len(e.Type)+len(e.StreamType)+2*20+1+extra)}
	w.buf = appendUUID(w.buf, e.StreamID)
	w.end("") // the key
	w.text(HeaderFormat, FormatData)
	w.buf = appendUUID(w.buf, e.ID)
	w.end(HeaderEventID)
	w.text(HeaderEventType, e.Type)
	w.buf = strconv.AppendInt(w.buf, int64(e.SchemaVersion), 10)
	w.end(HeaderSchemaVersion)
	w.buf = appendUUID(w.buf, e.StreamID)
	w.end(HeaderStreamID)
	w.text(HeaderStreamType, e.StreamType)
	w.buf = strconv.AppendInt(w.buf, e.Version, 10)
	w.end(HeaderVersion)
	w.buf = appendUUID(w.buf, e.WorkspaceID)
	w.end(HeaderWorkspaceID)
	return w
}

// text adds header key with value s, unless s is empty.
func (w *headerWriter) text(key, s string) {
	if s != "" {
		w.buf = append(w.buf, s...)
		w.end(key)
	}
}

// end names the value appended since the last end.
func (w *headerWriter) end(key string) {
	w.keys[w.n], w.ends[w.n] = key, len(w.buf)
	w.n++
}

// record is the record with the written key and headers and value.
func (w *headerWriter) record(topic string, e helpdeskflow.Event, value []byte) *kgo.Record {
	buf := w.buf
	headers := make([]kgo.RecordHeader, w.n-1)
	for i := 1; i < w.n; i++ {
		headers[i-1] = kgo.RecordHeader{Key: w.keys[i], Value: buf[w.ends[i-1]:w.ends[i]:w.ends[i]]}
	}
	return &kgo.Record{Topic: topic, Key: buf[:w.ends[0]:w.ends[0]], Value: value, Headers: headers, Timestamp: e.OccurredAt}
}

// appendUUID appends u in its canonical form (uuid.UUID.String) without
// allocating.
func appendUUID(b []byte, u uuid.UUID) []byte {
	b = hex.AppendEncode(b, u[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, u[10:16])
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

// ErrNotAnEvent is the cause of a record's decode error when it is not an
// event: a record of FormatData without data, or with a header missing or
// malformed (it needs an event id, a stream id and a positive version), or
// a record of the first format whose value is not a JSON event with a
// stream id and a positive version. ErrClaimCheckUnresolved is the cause
// when it is a claim check whose event the store does not have (or when
// there is no Loader to ask).
var (
	ErrNotAnEvent           = errors.New("record is not an event")
	ErrClaimCheckUnresolved = errors.New("claim check names an event the event store does not have")
)

// Decode decodes records of either format into events, in order. events[i]
// is valid when errs[i] is nil; its Data shares the record's value. A
// record that is not an event, or a claim check that cannot be resolved,
// gets an error (wrapping ErrNotAnEvent or ErrClaimCheckUnresolved) for the
// caller to log, count and skip; a watermark record gets ErrWatermark, for
// the caller to skip quietly (the Consumer loop keeps them from its users
// unless asked). The events of claim checks are loaded with
// one call to loader; when that call fails, Decode returns its error and
// the caller retries the batch. loader may be nil when no claim check is
// expected (each then gets ErrClaimCheckUnresolved).
func Decode(ctx context.Context, records []*kgo.Record, loader Loader) (events []helpdeskflow.Event, errs []error, err error) {
	events = make([]helpdeskflow.Event, len(records))
	errs = make([]error, len(records))
	var claims []uuid.UUID
	var claimed []bool
	for i, r := range records {
		claim, err := decodeRecord(r, &events[i])
		if err != nil {
			events[i], errs[i] = helpdeskflow.Event{}, err
			continue
		}
		if claim {
			if claimed == nil {
				claimed = make([]bool, len(records))
			}
			claims, claimed[i] = append(claims, events[i].ID), true
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
	for i := range records {
		if !claimed[i] {
			continue
		}
		e, ok := byID[events[i].ID]
		if !ok || e.StreamID != events[i].StreamID || e.Version != events[i].Version {
			events[i], errs[i] = helpdeskflow.Event{}, fmt.Errorf("%w: event %s", ErrClaimCheckUnresolved, events[i].ID)
			continue
		}
		events[i] = e
	}
	return events, errs, nil
}

// decodeRecord decodes r into e and reports whether r is a claim check,
// whose e names the event but holds no data.
func decodeRecord(r *kgo.Record, e *helpdeskflow.Event) (claim bool, err error) {
	if IsWatermark(r) {
		return false, ErrWatermark
	}
	format := ""
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderFormat:
			format = string(h.Value)
		case HeaderClaimCheck:
			claim = true
		}
	}
	switch format {
	case "":
		if err := json.Unmarshal(r.Value, e); err != nil {
			return false, fmt.Errorf("%w: %v", ErrNotAnEvent, err)
		}
		if e.StreamID == uuid.Nil || e.Version < 1 {
			return false, fmt.Errorf("%w: no stream id or no positive version", ErrNotAnEvent)
		}
		return claim, nil
	case FormatData:
		if err := decodeHeaders(r.Headers, e); err != nil {
			return false, fmt.Errorf("%w: %v", ErrNotAnEvent, err)
		}
		if !claim {
			if len(r.Value) == 0 {
				return false, fmt.Errorf("%w: no data", ErrNotAnEvent)
			}
			e.Data = r.Value
		}
		return claim, nil
	default:
		return false, fmt.Errorf("%w: unknown %s %q", ErrNotAnEvent, HeaderFormat, format)
	}
}

// decodeHeaders fills e's envelope from the headers of a FormatData record
// and fails, naming the header, when one is malformed or one of event id,
// stream id and a positive version is missing.
func decodeHeaders(headers []kgo.RecordHeader, e *helpdeskflow.Event) error {
	var err error
	for _, h := range headers {
		v := h.Value
		switch h.Key {
		case HeaderEventID:
			e.ID, err = uuid.ParseBytes(v)
		case HeaderEventType:
			e.Type = known(v)
		case HeaderSchemaVersion:
			var n int64
			n, err = strconv.ParseInt(string(v), 10, 0)
			e.SchemaVersion = int(n)
		case HeaderStreamID:
			e.StreamID, err = uuid.ParseBytes(v)
		case HeaderStreamType:
			e.StreamType = known(v)
		case HeaderVersion:
			e.Version, err = strconv.ParseInt(string(v), 10, 64)
		case HeaderWorkspaceID:
			e.WorkspaceID, err = uuid.ParseBytes(v)
		case HeaderOccurredAt:
			e.OccurredAt, err = time.Parse(time.RFC3339Nano, string(v))
		case HeaderPosition:
			e.Position, err = parsePosition(v)
		case HeaderActorType:
			e.Metadata.Actor.Type = known(v)
		case HeaderActorID:
			e.Metadata.Actor.ID = string(v)
		case HeaderChannel:
			e.Metadata.Channel = known(v)
		case HeaderAPIKeyID:
			e.Metadata.APIKeyID = string(v)
		case HeaderRequestID:
			e.Metadata.RequestID = string(v)
		case HeaderRuleID:
			e.Metadata.RuleID = string(v)
		case HeaderRuleVersion:
			e.Metadata.RuleVersion, err = strconv.ParseInt(string(v), 10, 64)
		case HeaderCausationID:
			e.Metadata.CausationID = string(v)
		case HeaderCorrelationID:
			e.Metadata.CorrelationID = string(v)
		}
		if err != nil {
			return fmt.Errorf("header %s: %w", h.Key, err)
		}
	}
	switch {
	case e.ID == uuid.Nil:
		return errors.New("no " + HeaderEventID)
	case e.StreamID == uuid.Nil:
		return errors.New("no " + HeaderStreamID)
	case e.Version < 1:
		return errors.New("no positive " + HeaderVersion)
	}
	return nil
}

// knownStrings are the header values most records repeat (stream types,
// the most frequent event types, actor types, channels), which decoding
// shares instead of allocating each time.
var knownStrings = func() map[string]string {
	m := map[string]string{}
	for _, s := range append(helpdeskflow.StreamTypes,
		helpdeskflow.EventTicketCreated, helpdeskflow.EventTicketMessageAdded, helpdeskflow.EventTicketUpdated,
		helpdeskflow.EventCustomerCreated, helpdeskflow.EventCustomerUpdated, helpdeskflow.EventTicketSLAPolicyApplied,
		helpdeskflow.ChannelAPI, helpdeskflow.ChannelAutomation, helpdeskflow.ChannelAgent, helpdeskflow.ChannelIntegration, helpdeskflow.ChannelSystem,
		helpdeskflow.ActorAPIKey, helpdeskflow.ActorAgent, helpdeskflow.ActorRule, helpdeskflow.ActorIntegration, helpdeskflow.ActorSystem) {
		m[s] = s
	}
	return m
}()

// known returns v as a string, shared when it is one of knownStrings.
func known(v []byte) string {
	if s, ok := knownStrings[string(v)]; ok {
		return s
	}
	return string(v)
}

package kafka_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// fullEvent has every field of the envelope set, metadata included.
func fullEvent() helpdeskflow.Event {
	return helpdeskflow.Event{ID: uuid.New(), Type: helpdeskflow.EventTicketUpdated, SchemaVersion: 3,
		StreamID: uuid.New(), StreamType: helpdeskflow.StreamTicket, Version: 42, WorkspaceID: uuid.New(),
		OccurredAt: time.Date(2026, 12, 6, 8, 1, 2, 345678000, time.UTC), Data: []byte(`{"status": {"old": "open", "new": "solved"}}`),
		Metadata: helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorRule, ID: "r-1"}, Channel: helpdeskflow.ChannelAutomation,
			RequestID: "req_1", RuleID: uuid.NewString(), RuleVersion: 7, CausationID: uuid.NewString(), CorrelationID: uuid.NewString()},
		Position: helpdeskflow.Position{TxID: math.MaxUint64, Seq: 12}}
}

// TestNewRecord_ValueIsTheData: the relay publishes the stored data bytes
// as they are (no re-encoding: jsonb's spaces stay) with the envelope in
// headers, and Decode gives back the whole event, its data sharing the
// record's value.
func TestNewRecord_ValueIsTheData(t *testing.T) {
	e := fullEvent()
	r, err := kafka.NewRecord(kafka.TopicEvents, e)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Value) != string(e.Data) || &r.Value[0] != &e.Data[0] {
		t.Errorf("value = %s, want the event's data bytes themselves", r.Value)
	}
	if string(r.Key) != e.StreamID.String() || !r.Timestamp.Equal(e.OccurredAt) {
		t.Errorf("key %s, timestamp %s: want the stream id and the event time", r.Key, r.Timestamp)
	}
	for key, want := range map[string]string{kafka.HeaderFormat: kafka.FormatData, kafka.HeaderEventID: e.ID.String(),
		kafka.HeaderEventType: e.Type, kafka.HeaderVersion: "42", kafka.HeaderWorkspaceID: e.WorkspaceID.String(),
		kafka.HeaderStreamID: e.StreamID.String(), kafka.HeaderStreamType: e.StreamType} {
		if got := header(r, key); got != want {
			t.Errorf("header %s = %q, want %q", key, got, want)
		}
	}
	events, errs, err := kafka.Decode(context.Background(), []*kgo.Record{r}, nil)
	if err != nil || errs[0] != nil {
		t.Fatalf("Decode: %v %v", err, errs[0])
	}
	assertSameEvent(t, events[0], e)
	if &events[0].Data[0] != &r.Value[0] {
		t.Error("the decoded data is a copy of the value")
	}

	// Empty metadata fields have no header and decode empty.
	e.Metadata = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}
	r, _ = kafka.NewRecord(kafka.TopicEvents, e)
	if header(r, kafka.HeaderRuleVersion) != "" || header(r, kafka.HeaderRequestID) != "" {
		t.Errorf("headers of empty metadata fields: %v", r.Headers)
	}
	events, errs, _ = kafka.Decode(context.Background(), []*kgo.Record{r}, nil)
	if errs[0] != nil || events[0].Metadata != e.Metadata {
		t.Errorf("metadata %+v (%v), want %+v", events[0].Metadata, errs[0], e.Metadata)
	}
}

func assertSameEvent(t *testing.T, got, want helpdeskflow.Event) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.SchemaVersion != want.SchemaVersion || got.StreamID != want.StreamID ||
		got.StreamType != want.StreamType || got.Version != want.Version || got.WorkspaceID != want.WorkspaceID ||
		!got.OccurredAt.Equal(want.OccurredAt) || string(got.Data) != string(want.Data) || got.Metadata != want.Metadata {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

// firstFormat is a record as relays before FormatData wrote it: the JSON
// encoding of the whole event as the value, four headers.
func firstFormat(t *testing.T, e helpdeskflow.Event) *kgo.Record {
	t.Helper()
	value, err := helpdeskflow.MarshalJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: kafka.TopicEvents, Key: []byte(e.StreamID.String()), Value: value, Headers: []kgo.RecordHeader{
		{Key: kafka.HeaderEventID, Value: []byte(e.ID.String())},
		{Key: kafka.HeaderEventType, Value: []byte(e.Type)},
		{Key: kafka.HeaderVersion, Value: []byte(strconv.FormatInt(e.Version, 10))},
		{Key: kafka.HeaderWorkspaceID, Value: []byte(e.WorkspaceID.String())},
	}}
}

// TestDecode_BothFormats: during an upgrade a topic holds records and
// claim checks of the first format beside those of FormatData; a consumer
// decodes all of them, in order, and resolves both kinds of claim check.
func TestDecode_BothFormats(t *testing.T) {
	s := testenv.Store(t)
	oldChecked := stored(t, s, `{"body":"old claim check"}`)
	newChecked := stored(t, s, `{"body":"new claim check"}`)
	old, current := fullEvent(), fullEvent()
	old.Data = []byte(`{"status":{"old":"open","new":"pending"}}`)

	oldClaim := firstFormat(t, helpdeskflow.Event{ID: oldChecked.ID, Type: oldChecked.Type, StreamID: oldChecked.StreamID,
		StreamType: oldChecked.StreamType, Version: oldChecked.Version, WorkspaceID: oldChecked.WorkspaceID})
	oldClaim.Value = []byte(`{"id":"` + oldChecked.ID.String() + `","type":"` + oldChecked.Type + `","stream_id":"` + oldChecked.StreamID.String() +
		`","stream_type":"ticket","version":1,"workspace_id":"` + oldChecked.WorkspaceID.String() + `"}`)
	oldClaim.Headers = append(oldClaim.Headers, kgo.RecordHeader{Key: kafka.HeaderClaimCheck, Value: []byte("true")})
	currentRecord, err := kafka.NewRecord(kafka.TopicEvents, current)
	if err != nil {
		t.Fatal(err)
	}
	records := []*kgo.Record{firstFormat(t, old), oldClaim, currentRecord, kafka.ClaimCheck(kafka.TopicEvents, newChecked)}
	events, errs, err := kafka.Decode(context.Background(), records, s)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []helpdeskflow.Event{old, oldChecked, current, newChecked} {
		if errs[i] != nil {
			t.Errorf("record %d: %v", i, errs[i])
			continue
		}
		assertSameEvent(t, events[i], want)
	}
}

// TestClaimCheck_NamesTheEventWithoutData: a claim check of FormatData has
// no value and no metadata, whatever the event holds.
func TestClaimCheck_NamesTheEventWithoutData(t *testing.T) {
	e := fullEvent()
	e.Data = []byte(`"` + strings.Repeat("x", 2_000_000) + `"`)
	e.Metadata.RequestID = strings.Repeat("r", 100_000)
	e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := kafka.NewRecord(kafka.TopicEvents, e); err == nil {
		t.Error("NewRecord took a time after year 9999")
	}
	r := kafka.ClaimCheck(kafka.TopicEvents, e)
	if !kafka.IsClaimCheck(r) || len(r.Value) != 0 || kafka.RecordBytes(r) > 500 {
		t.Errorf("claim check: %d bytes of value, %d in all, headers %v", len(r.Value), kafka.RecordBytes(r), r.Headers)
	}
	if header(r, kafka.HeaderEventID) != e.ID.String() || header(r, kafka.HeaderVersion) != "42" || header(r, kafka.HeaderStreamID) != e.StreamID.String() {
		t.Errorf("claim check headers %v do not name the event", r.Headers)
	}
}

// TestDecode_MalformedRecords: a FormatData record without what names an
// event, with a malformed header or without data, or of an unknown format,
// is not an event.
func TestDecode_MalformedRecords(t *testing.T) {
	e := fullEvent()
	good, err := kafka.NewRecord(kafka.TopicEvents, e)
	if err != nil {
		t.Fatal(err)
	}
	without := func(key string) *kgo.Record {
		r := *good
		r.Headers = nil
		for _, h := range good.Headers {
			if h.Key != key {
				r.Headers = append(r.Headers, h)
			}
		}
		return &r
	}
	with := func(key, value string) *kgo.Record {
		r := without(key)
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
		return r
	}
	noData := *good
	noData.Value = nil
	cases := map[string]*kgo.Record{
		"no event id": without(kafka.HeaderEventID), "no stream id": without(kafka.HeaderStreamID), "no version": without(kafka.HeaderVersion),
		"version 0": with(kafka.HeaderVersion, "0"), "bad uuid": with(kafka.HeaderWorkspaceID, "nope"),
		"bad time": with(kafka.HeaderOccurredAt, "yesterday"), "bad position": with(kafka.HeaderPosition, "12"),
		"bad rule version": with(kafka.HeaderRuleVersion, "x"), "unknown format": with(kafka.HeaderFormat, "3"), "no data": &noData,
	}
	for name, r := range cases {
		_, errs, err := kafka.Decode(context.Background(), []*kgo.Record{r}, nil)
		if err != nil || !errors.Is(errs[0], kafka.ErrNotAnEvent) {
			t.Errorf("%s: err %v, record err %v; want ErrNotAnEvent", name, err, errs[0])
		}
	}
}

// TestNewRecord_WithinEventSize: the record of the longest envelope an
// event can have is no larger than helpdeskflow.EventSize says, so an
// event the store accepted is never too large for the relay.
func TestNewRecord_WithinEventSize(t *testing.T) {
	e := fullEvent()
	e.Type, e.StreamType = helpdeskflow.EventTicketNotificationRequested, helpdeskflow.StreamSLAPolicy
	e.SchemaVersion, e.Version, e.Position = math.MinInt64, math.MinInt64, helpdeskflow.Position{TxID: math.MaxUint64, Seq: math.MinInt64}
	e.OccurredAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -(13*3600+59*60)))
	e.Metadata = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: uuid.NewString()},
		Channel: helpdeskflow.ChannelIntegration, RequestID: "req_" + strings.Repeat("f", 32), RuleID: uuid.NewString(), RuleVersion: math.MinInt64,
		CausationID: uuid.NewString(), CorrelationID: uuid.NewString()}
	mdJSON, err := helpdeskflow.MarshalJSON(e.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	r, err := kafka.NewRecord(kafka.TopicEvents, e)
	if err != nil {
		t.Fatal(err)
	}
	if got, bound := kafka.RecordBytes(r), helpdeskflow.EventSize(e.Type, e.StreamType, e.Data, mdJSON); got > bound {
		t.Errorf("record is %d bytes, EventSize says at most %d", got, bound)
	}
}

// header is the value of r's header key, "" when it has none.
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

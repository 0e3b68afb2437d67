package helpdeskflow_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

func TestMarshalJSON_NoHTMLEscaping(t *testing.T) {
	got, err := helpdeskflow.MarshalJSON(map[string]string{"body": "<a> & <b>"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"body":"<a> & <b>"}`; string(got) != want {
		t.Errorf("MarshalJSON = %s, want %s", got, want)
	}
	e, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketUpdated, map[string]string{"subject": strings.Repeat("<", 1000)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(e.Data), len(`{"subject":""}`)+1000; got != want {
		t.Errorf("event data of 1,000 '<' is %d bytes, want %d (one byte each)", got, want)
	}
}

// TestEventSize_UpperBound encodes the longest envelope an event can have
// (largest numbers, a time with nanoseconds and an offset, the longest type
// names) and checks EventSize is never below the real encoding.
func TestEventSize_UpperBound(t *testing.T) {
	data := []byte(`{"subject":"` + strings.Repeat("x", 100) + `"}`)
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: uuid.NewString()},
		Channel: helpdeskflow.ChannelAPI, RequestID: "req_" + strings.Repeat("f", 32), RuleID: uuid.NewString(), RuleVersion: math.MaxInt64,
		CausationID: uuid.NewString(), CorrelationID: uuid.NewString()}
	mdJSON, err := helpdeskflow.MarshalJSON(md)
	if err != nil {
		t.Fatal(err)
	}
	e := helpdeskflow.Event{ID: uuid.New(), Type: helpdeskflow.EventTicketNotificationRequested, SchemaVersion: math.MaxInt64,
		StreamID: uuid.New(), StreamType: helpdeskflow.StreamSLAPolicy, Version: math.MinInt64, WorkspaceID: uuid.New(),
		OccurredAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -(13*3600+59*60))),
		Data:       data, Metadata: md}
	encoded, err := helpdeskflow.MarshalJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	if got, bound := len(encoded), helpdeskflow.EventSize(e.Type, e.StreamType, data, mdJSON); got > bound {
		t.Errorf("encoded event is %d bytes, EventSize says at most %d", got, bound)
	}
	// Data as Postgres returns it from jsonb (spaces after ':' and ',') is
	// compacted by the encoder, never longer than what was appended.
	spaced := bytes.ReplaceAll(data, []byte(`":"`), []byte(`": "`))
	e.Data = spaced
	if re, _ := helpdeskflow.MarshalJSON(e); len(re) != len(encoded) {
		t.Errorf("re-encoding jsonb-formatted data gives %d bytes, want %d", len(re), len(encoded))
	}
	var back helpdeskflow.Event
	if err := json.Unmarshal(encoded, &back); err != nil || back.ID != e.ID {
		t.Errorf("the encoding does not decode back: %v", err)
	}
}

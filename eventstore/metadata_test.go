package eventstore_test

import (
	"encoding/json"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
)

// metadataCases are metadata as Postgres prints jsonb, compact, and in
// shapes the fast path must leave to encoding/json.
var metadataCases = []string{
	`{"actor": {"id": "5d41402a-bc4b-2a76-b971-9d911017c592", "type": "api_key"}, "channel": "api", "request_id": "req_1"}`,
	`{"actor":{"type":"agent","id":"a1"},"channel":"email","rule_id":"r","causation_id":"c","correlation_id":"k"}`,
	`{"actor": {"type": "system"}, "channel": "automation", "rule_id": "r1", "rule_version": 3}`,
	`{}`, `{"actor": {}}`, ` { "channel" : "api" } `,
	`{"Channel": "api"}`, `{"CHANNEL": "x", "channel": "y"}`, `{"channel": "a", "channel": "b"}`,
	`{"channel": "caf\u00e9"}`, `{"channel": "café"}`, `{"channel": "a\"b"}`, `{"request_id": null}`,
	`{"actor": null, "channel": "api"}`, `{"actor": "x"}`, `{"extra": "x", "channel": "api"}`,
	`{"actor": {"type": "agent", "name": "x"}}`, `{"channel": 1}`,
	`{"channel": "api"} x`, `{"channel": "api",}`, `{"channel" "api"}`, `{"channel": "api"`, ``, `null`, `[]`,
	"{\"channel\": \"a\tb\"}", "{\n\"channel\": \"api\"\n}",
}

func checkMetadata(t *testing.T, data string) {
	t.Helper()
	var want, got helpdeskflow.Metadata
	wantErr := json.Unmarshal([]byte(data), &want)
	gotErr := eventstore.DecodeMetadata([]byte(data), &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: error %v, json.Unmarshal's %v", data, gotErr, wantErr)
	}
	if wantErr == nil && got != want {
		t.Fatalf("%q: decoded %+v, json.Unmarshal %+v", data, got, want)
	}
}

func TestDecodeMetadata_AsEncodingJSON(t *testing.T) {
	for _, c := range metadataCases {
		checkMetadata(t, c)
	}
}

func FuzzDecodeMetadata(f *testing.F) {
	for _, c := range metadataCases {
		f.Add(c)
	}
	f.Fuzz(checkMetadata)
}

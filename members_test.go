package helpdeskflow_test

import (
	"bytes"
	"encoding/json"
	"sort"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
)

// creationChanges is what FieldChanges gave a creation before it split the
// object itself: the data decoded into a map, each member from null,
// sorted by name.
func creationChanges(data []byte) ([]helpdeskflow.FieldChange, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, err
	}
	changes := make([]helpdeskflow.FieldChange, 0, len(fields))
	for name, value := range fields {
		changes = append(changes, helpdeskflow.FieldChange{Field: name, Old: json.RawMessage("null"), New: value})
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Field < changes[j].Field })
	return changes, nil
}

// checkCreationChanges: for valid JSON, the changes FieldChanges lists for
// a creation are those of decoding into a map (the same members, names
// and raw values, a repeated name keeping its last value), and an error
// exactly when decoding fails; for any input it does not panic.
func checkCreationChanges(t *testing.T, data []byte) {
	e := helpdeskflow.Event{Type: helpdeskflow.EventTicketCreated, Data: data}
	got, err := helpdeskflow.FieldChanges(e)
	if !json.Valid(data) {
		return // the store holds valid JSON only (Postgres checks it)
	}
	want, wantErr := creationChanges(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("FieldChanges(%q) error %v, decoding into a map %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("FieldChanges(%q) = %s, want %s", data, got, want)
	}
	for i := range got {
		if got[i].Field != want[i].Field || !bytes.Equal(got[i].Old, want[i].Old) || !bytes.Equal(got[i].New, want[i].New) {
			t.Fatalf("FieldChanges(%q)[%d] = %s, want %s", data, i, got[i], want[i])
		}
	}
}

var creationSamples = []string{
	`{}`, ` { } `, `{"a":1}`, `{"subject":"Broken","status":"new","tags":["a","b"],"custom_fields":{"x":{"y":[1,2,{"z":"}"}]}},"message":{"body":"say \"hi\" \\ {"}}`,
	"{\n\t\"b\" : true ,\r\n \"a\":null}", `{"a":1,"a":2}`, `{"a":-1.5e+3,"b":[],"c":{}}`, `{"\u0061":1}`, `{"é":1}`, `[1,2]`, `"x"`, `null`,
	`{"a":"\u00e9\ud83d\ude00"}`, `{"a":[[[]]],"b":"]}"}`, `{"z":1,"y":2,"x":3}`, `{"a":1}x`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{`, ``,
}

func TestFieldChanges_CreationIsTheDataDecodedIntoAMap(t *testing.T) {
	for _, s := range creationSamples {
		checkCreationChanges(t, []byte(s))
	}
	// A ticket as the commands write it.
	created, err := helpdeskflow.NewEventOf(helpdeskflow.EventTicketCreated, helpdeskflow.TicketCreated{
		Subject: "Order 4711", Status: helpdeskflow.StatusNew, Tags: []string{"a"}, CustomFields: map[string]any{"plan": "pro"},
		Message: helpdeskflow.MessageAdded{AuthorType: helpdeskflow.AuthorCustomer, Body: "<p>\"quoted\"</p>", BodyText: "\"quoted\""},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCreationChanges(t, created.Data)
	e := helpdeskflow.Event{Type: helpdeskflow.EventTicketCreated, Data: created.Data}
	split := testing.AllocsPerRun(50, func() { _, _ = helpdeskflow.FieldChanges(e) })
	decoded := testing.AllocsPerRun(50, func() { _, _ = creationChanges(created.Data) })
	if split*2 > decoded {
		t.Errorf("describing a creation allocates %.0f times, decoding it into a map %.0f: want half or less", split, decoded)
	}
}

func FuzzFieldChangesOfCreation(f *testing.F) {
	for _, s := range creationSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(checkCreationChanges)
}

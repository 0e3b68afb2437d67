package projections_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

func TestCustomerReader_ListCustomers(t *testing.T) {
	t.Parallel()
	conn, _ := newDB(t)
	brokers := newKafka(t)
	w := newWorld()
	gold, silver, merged, other := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	created := func(id uuid.UUID, email string, tags []string, fields map[string]any) helpdeskflow.Event {
		return w.event(helpdeskflow.StreamCustomer, id, 1, helpdeskflow.EventCustomerCreated,
			helpdeskflow.CustomerCreated{Email: email, Tags: tags, CustomFields: fields})
	}
	events := []helpdeskflow.Event{
		created(gold, "gold@example.com", []string{"vip"}, map[string]any{"tier": "gold", "seats": 12, "trial": false}),
		created(silver, "silver@example.com", []string{"vip", "eu"}, map[string]any{"tier": "silver"}),
		created(merged, "merged@example.com", []string{"vip"}, map[string]any{"tier": "gold"}),
		w.event(helpdeskflow.StreamCustomer, merged, 2, helpdeskflow.EventCustomerMerged, helpdeskflow.CustomerMerged{Into: gold}),
		w.event(helpdeskflow.StreamCustomer, silver, 2, helpdeskflow.EventCustomerUpdated, helpdeskflow.CustomerUpdated{
			CustomFields: map[string]helpdeskflow.Change[any]{"seats": {New: 3.0}}}),
	}
	otherWorld := newWorld()
	events = append(events, otherWorld.event(helpdeskflow.StreamCustomer, other, 1, helpdeskflow.EventCustomerCreated,
		helpdeskflow.CustomerCreated{Email: "x@example.com", Tags: []string{"vip"}, CustomFields: map[string]any{"tier": "gold"}}))
	produce(t, brokers, events...)
	startProjector(t, conn, brokers, "g-customers")
	eventually(t, wait, "customers projected", func() bool {
		return queryUint(t, conn, "SELECT count() FROM customers FINAL WHERE version = 2") == 2
	})

	reader := projections.NewCustomerReader(conn)
	ids := func(f projections.CustomerFilter) []uuid.UUID {
		t.Helper()
		var out []uuid.UUID
		for {
			page, err := reader.ListCustomers(context.Background(), w.workspace, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Customers {
				out = append(out, c.ID)
			}
			if page.NextCursor == "" {
				return out
			}
			f.Cursor = page.NextCursor
		}
	}
	cases := []struct {
		name   string
		filter projections.CustomerFilter
		want   []uuid.UUID
	}{
		{"all, newest first, merged left out", projections.CustomerFilter{Limit: 1}, []uuid.UUID{silver, gold}},
		{"tag", projections.CustomerFilter{Tag: "EU"}, []uuid.UUID{silver}},
		{"string custom field", projections.CustomerFilter{CustomField: "tier", CustomFieldValue: "gold"}, []uuid.UUID{gold}},
		{"number custom field", projections.CustomerFilter{CustomField: "seats", CustomFieldValue: "3"}, []uuid.UUID{silver}},
		{"boolean custom field", projections.CustomerFilter{CustomField: "trial", CustomFieldValue: "false"}, []uuid.UUID{gold}},
		{"tag and field", projections.CustomerFilter{Tag: "vip", CustomField: "tier", CustomFieldValue: "silver"}, []uuid.UUID{silver}},
		{"no match", projections.CustomerFilter{CustomField: "tier", CustomFieldValue: "bronze"}, nil},
	}
	for _, c := range cases {
		if got := ids(c.filter); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	_, err := reader.ListCustomers(context.Background(), w.workspace, projections.CustomerFilter{CustomField: "bad name!", Limit: 101, Cursor: "%%"})
	if got := len(helpdeskflow.ErrorDetails(err)); got != 3 {
		t.Errorf("invalid filter: %v, want 3 problems", err)
	}
}

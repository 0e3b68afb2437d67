package helpdeskflow

import (
	"encoding/json"
	"sort"

	"github.com/google/uuid"
)

// FieldChange is one field an event changed, with its value before and
// after as JSON (null when the field did not exist).
type FieldChange struct {
	Field string          `json:"field"`
	Old   json.RawMessage `json:"old"`
	New   json.RawMessage `json:"new"`
}

// FieldChanges lists what an event changed, field by field, sorted by field
// name. A creation changes every field it sets from null. Event types that
// change no entity field (or that this version does not know) return an
// empty list, so the audit history never fails on an event it cannot
// describe.
func FieldChanges(e Event) ([]FieldChange, error) {
	switch e.Type {
	case EventTicketCreated, EventCustomerCreated, EventWorkspaceCreated, EventAPIKeyCreated, EventAPIKeyRevoked,
		// Rules and policies carry their whole definition in every version;
		// an update shows the new one (old values null: the previous
		// version is the event before).
		EventAutomationCreated, EventAutomationUpdated, EventSLAPolicyCreated, EventSLAPolicyUpdated:
		return createdFieldChanges(e)
	case EventTicketMessageAdded:
		return []FieldChange{{Field: "messages", Old: json.RawMessage("null"), New: e.Data}}, nil
	case EventCustomerUpdated:
		d, err := dataOf[CustomerUpdated](e)
		if err != nil {
			return nil, err
		}
		return d.fieldChanges(), nil
	case EventCustomerMerged:
		var d CustomerMerged
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, &Error{Code: EInternal, Message: "decode " + e.Type, Err: err}
		}
		return []FieldChange{{Field: "merged_into", Old: json.RawMessage("null"), New: mustJSON(d.Into)}}, nil
	case EventTicketCustomerChanged:
		var d TicketCustomerChanged
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, &Error{Code: EInternal, Message: "decode " + e.Type, Err: err}
		}
		return []FieldChange{{Field: "customer_id", Old: mustJSON(d.Old), New: mustJSON(d.New)}}, nil
	case EventTicketUpdated:
		d, err := dataOf[TicketUpdated](e)
		if err != nil {
			return nil, err
		}
		return d.fieldChanges(), nil
	case EventTicketSLAPolicyApplied:
		var d SLAPolicyApplied
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, &Error{Code: EInternal, Message: "decode " + e.Type, Err: err}
		}
		return d.fieldChanges(), nil
	case EventTicketSLAWarning, EventTicketSLABreached:
		var d SLAPoint
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, &Error{Code: EInternal, Message: "decode " + e.Type, Err: err}
		}
		state := SLAWarning
		if e.Type == EventTicketSLABreached {
			state = SLABreached
		}
		return []FieldChange{{Field: "sla." + d.Target, Old: json.RawMessage("null"), New: mustJSON(state)}}, nil
	case EventIPBlocklistUpdated:
		var d IPBlocklistUpdated
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, &Error{Code: EInternal, Message: "decode " + e.Type, Err: err}
		}
		return []FieldChange{{Field: "ip_blocklist", Old: mustJSON(d.Previous), New: mustJSON(d.CIDRs)}}, nil
	case EventRateLimitsUpdated:
		var d RateLimitsUpdated
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, &Error{Code: EInternal, Message: "decode " + e.Type, Err: err}
		}
		var changes []FieldChange
		for category, limit := range d.Changed {
			old := json.RawMessage("null")
			if prev, ok := d.Previous[category]; ok {
				old = mustJSON(prev)
			}
			changes = append(changes, FieldChange{Field: "rate_limits." + category, Old: old, New: mustJSON(limit)})
		}
		if d.SoftThrottleDelayMs != nil {
			changes = append(changes, FieldChange{Field: "soft_throttle_delay_ms", Old: mustJSON(d.PreviousDelayMs), New: mustJSON(d.SoftThrottleDelayMs)})
		}
		sort.Slice(changes, func(i, j int) bool { return changes[i].Field < changes[j].Field })
		return changes, nil
	default:
		return []FieldChange{}, nil
	}
}

// mustJSON encodes values that always encode (plain data types).
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

func (u TicketUpdated) fieldChanges() []FieldChange {
	var changes []FieldChange
	add := func(field string, old, new any) {
		changes = append(changes, FieldChange{Field: field, Old: mustJSON(old), New: mustJSON(new)})
	}
	if u.Subject != nil {
		add("subject", u.Subject.Old, u.Subject.New)
	}
	if u.Status != nil {
		add("status", u.Status.Old, u.Status.New)
	}
	if u.Priority != nil {
		add("priority", u.Priority.Old, u.Priority.New)
	}
	if u.AssigneeID != nil {
		add("assignee_id", u.AssigneeID.Old, u.AssigneeID.New)
	}
	if u.Team != nil {
		add("team", u.Team.Old, u.Team.New)
	}
	if u.Tags != nil {
		add("tags", u.Tags.Old, u.Tags.New)
	}
	for name, c := range u.CustomFields {
		add("custom_fields."+name, c.Old, c.New)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Field < changes[j].Field })
	return changes
}

func (u CustomerUpdated) fieldChanges() []FieldChange {
	var changes []FieldChange
	add := func(field string, old, new any) {
		changes = append(changes, FieldChange{Field: field, Old: mustJSON(old), New: mustJSON(new)})
	}
	if u.Email != nil {
		add("email", u.Email.Old, u.Email.New)
	}
	if u.Name != nil {
		add("name", u.Name.Old, u.Name.New)
	}
	if u.Tags != nil {
		add("tags", u.Tags.Old, u.Tags.New)
	}
	for name, c := range u.CustomFields {
		add("custom_fields."+name, c.Old, c.New)
	}
	for name, c := range u.Metadata {
		add("metadata."+name, c.Old, c.New)
	}
	if u.LinkedProfiles != nil {
		add("linked_profiles", u.LinkedProfiles.Old, u.LinkedProfiles.New)
	}
	if u.MergedFrom != nil {
		add("merged_from", nil, *u.MergedFrom)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Field < changes[j].Field })
	return changes
}

// fieldChanges shows the policy (id, version and name; null when removed)
// and each target's spec (null when the policy has none). The event does
// not carry the previous policy, so every old value is null.
func (d SLAPolicyApplied) fieldChanges() []FieldChange {
	null := json.RawMessage("null")
	policy := null
	if d.PolicyID != nil {
		policy = mustJSON(struct {
			ID      uuid.UUID `json:"id"`
			Version int64     `json:"version"`
			Name    string    `json:"name"`
		}{*d.PolicyID, d.PolicyVersion, d.PolicyName})
	}
	return []FieldChange{
		{Field: "sla.first_response", Old: null, New: mustJSON(d.FirstResponse)},
		{Field: "sla.policy", Old: null, New: policy},
		{Field: "sla.resolution", Old: null, New: mustJSON(d.Resolution)},
	}
}

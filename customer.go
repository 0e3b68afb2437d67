package helpdeskflow

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Customer is the whole state of one customer. MergedInto is set once the
// customer was merged into another: its id then resolves to that one.
type Customer struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	Email       string
	Name        string
	// ExternalID is the integrator's own id of the customer ("" when
	// none), unique per workspace.
	ExternalID     string
	Tags           []string
	CustomFields   map[string]any
	Metadata       map[string]any
	LinkedProfiles []LinkedProfile
	MergedInto     *uuid.UUID
	// TicketIDs are the customer's tickets, oldest first; filled by reads
	// that ask for them, not by ApplyCustomer.
	TicketIDs []uuid.UUID
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LinkedProfile is a customer's profile in a third-party system; provider
// and external id are unique per workspace.
type LinkedProfile struct {
	Provider   string         `json:"provider"`
	ExternalID string         `json:"external_id"`
	URL        string         `json:"url,omitempty"`
	Data       map[string]any `json:"data,omitempty"`
}

// CustomerCreated is the data of a customer.created event. Email is already
// normalized (see NormalizeEmail).
type CustomerCreated struct {
	Email          string          `json:"email"`
	Name           string          `json:"name"`
	ExternalID     string          `json:"external_id,omitempty"`
	Tags           []string        `json:"tags,omitempty"`
	CustomFields   map[string]any  `json:"custom_fields,omitempty"`
	Metadata       map[string]any  `json:"metadata,omitempty"`
	LinkedProfiles []LinkedProfile `json:"linked_profiles,omitempty"`
}

// CustomerUpdated is the data of a customer.updated event: each changed
// field with its old and new value. CustomFields and Metadata hold only
// the keys that changed (a nil New removes the key). MergedFrom names the
// customer whose data a merge brought in.
type CustomerUpdated struct {
	Email          *Change[string]          `json:"email,omitempty"`
	Name           *Change[string]          `json:"name,omitempty"`
	ExternalID     *Change[string]          `json:"external_id,omitempty"`
	Tags           *Change[[]string]        `json:"tags,omitempty"`
	CustomFields   map[string]Change[any]   `json:"custom_fields,omitempty"`
	Metadata       map[string]Change[any]   `json:"metadata,omitempty"`
	LinkedProfiles *Change[[]LinkedProfile] `json:"linked_profiles,omitempty"`
	MergedFrom     *uuid.UUID               `json:"merged_from,omitempty"`
}

// Empty reports whether u changes nothing.
func (u CustomerUpdated) Empty() bool {
	return u.Email == nil && u.Name == nil && u.ExternalID == nil && u.Tags == nil && len(u.CustomFields) == 0 && len(u.Metadata) == 0 &&
		u.LinkedProfiles == nil && u.MergedFrom == nil
}

// CustomerMerged is the data of a customer.merged event on the source
// customer's stream: from then on its id resolves to Into.
type CustomerMerged struct {
	Into uuid.UUID `json:"into"`
}

// TicketCustomerChanged is the data of a ticket.customer_changed event: a
// merge moved the ticket to another customer.
type TicketCustomerChanged struct {
	Old uuid.UUID `json:"old"`
	New uuid.UUID `json:"new"`
}

// NormalizeEmail returns the form customers are identified by: surrounding
// white space trimmed and every letter lowercased.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// ApplyCustomer folds one event of a customer's stream into c. It returns an
// EInternal error for an unknown event type or undecodable data.
func ApplyCustomer(c *Customer, e Event) error {
	switch e.Type {
	case EventCustomerCreated:
		d, err := dataOf[CustomerCreated](e)
		if err != nil {
			return err
		}
		*c = Customer{
			ID: e.StreamID, WorkspaceID: e.WorkspaceID, Email: d.Email, Name: d.Name, ExternalID: d.ExternalID,
			Tags: nonNil(d.Tags), CustomFields: orEmpty(d.CustomFields), Metadata: orEmpty(d.Metadata),
			LinkedProfiles: d.LinkedProfiles, CreatedAt: e.OccurredAt,
		}
		if c.LinkedProfiles == nil {
			c.LinkedProfiles = []LinkedProfile{}
		}
	case EventCustomerUpdated:
		d, err := dataOf[CustomerUpdated](e)
		if err != nil {
			return err
		}
		if d.Email != nil {
			c.Email = d.Email.New
		}
		if d.Name != nil {
			c.Name = d.Name.New
		}
		if d.ExternalID != nil {
			c.ExternalID = d.ExternalID.New
		}
		if d.Tags != nil {
			c.Tags = nonNil(d.Tags.New)
		}
		c.CustomFields = applyKeyChanges(c.CustomFields, d.CustomFields)
		c.Metadata = applyKeyChanges(c.Metadata, d.Metadata)
		if d.LinkedProfiles != nil {
			c.LinkedProfiles = d.LinkedProfiles.New
		}
	case EventCustomerMerged:
		var d CustomerMerged
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return &Error{Code: EInternal, Message: "decode customer.merged", Err: err}
		}
		c.MergedInto = &d.Into
	default:
		return &Error{Code: EInternal, Message: fmt.Sprintf("customer stream has unknown event type %q", e.Type), Err: ErrUnknownEventType}
	}
	c.Version = e.Version
	c.UpdatedAt = e.OccurredAt
	return nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// applyKeyChanges returns fields with changes applied (a nil New removes
// the key); fields itself is not modified.
func applyKeyChanges(fields map[string]any, changes map[string]Change[any]) map[string]any {
	if len(changes) == 0 {
		return orEmpty(fields)
	}
	out := make(map[string]any, len(fields)+len(changes))
	for k, v := range fields {
		out[k] = v
	}
	for k, c := range changes {
		if c.New == nil {
			delete(out, k)
		} else {
			out[k] = c.New
		}
	}
	return out
}

// CustomerFilter selects customers of a list: Tag, and CustomField equal to
// CustomFieldValue (compared as the JSON value: a string, or a number or
// boolean as JSON writes it). Limit is 1 to 100 (0: the default 25);
// Cursor is the NextCursor of the previous page.
type CustomerFilter struct {
	Tag              string
	CustomField      string
	CustomFieldValue string
	Limit            int
	Cursor           string
}

// CustomerPage is one page of a customer list, newest first. Its customers
// have their list fields only (no ticket ids, metadata or linked profiles).
// NextCursor is empty on the last page.
type CustomerPage struct {
	Customers  []Customer
	NextCursor string
}

package helpdeskflow

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Customer is the whole state of one customer.
type Customer struct {
	ID           uuid.UUID
	WorkspaceID  uuid.UUID
	Email        string
	Name         string
	Tags         []string
	CustomFields map[string]any
	Version      int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// CustomerCreated is the data of a customer.created event. Email is already
// normalized (see NormalizeEmail).
type CustomerCreated struct {
	Email string `json:"email"`
	Name  string `json:"name"`
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
		var d CustomerCreated
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return &Error{Code: EInternal, Message: "decode customer.created", Err: err}
		}
		*c = Customer{
			ID: e.StreamID, WorkspaceID: e.WorkspaceID, Email: d.Email, Name: d.Name,
			Tags: []string{}, CustomFields: map[string]any{}, CreatedAt: e.OccurredAt,
		}
	default:
		return &Error{Code: EInternal, Message: fmt.Sprintf("customer stream has unknown event type %q", e.Type), Err: ErrUnknownEventType}
	}
	c.Version = e.Version
	c.UpdatedAt = e.OccurredAt
	return nil
}

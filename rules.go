package helpdeskflow

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Rule kinds: the two kinds of workspace rules the event store keeps.
const (
	RuleKindAutomation = "automation"
	RuleKindSLAPolicy  = "sla_policy"
)

// RuleRecord is the current definition of one automation rule or SLA
// policy, as the write side keeps it next to the rule's stream. Version is
// the stream's version; Definition is the data of the rule's latest
// created or updated event.
type RuleRecord struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	Kind        string
	Version     int64
	Definition  json.RawMessage
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// RuleSet is every rule record of a workspace at one rule-set version, a
// counter that every change to any of them moves forward.
type RuleSet struct {
	Version int64
	Rules   []RuleRecord
}

// NotificationRequested is the data of ticket.notification_requested: an
// automation rule's asynchronous action for the dispatcher, such as
// notify_slack with its Value {"channel": ..., "message": ...}.
type NotificationRequested struct {
	Action string `json:"action"`
	Value  any    `json:"value"`
}

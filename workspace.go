package helpdeskflow

import (
	"time"

	"github.com/google/uuid"
)

// API key roles.
const (
	RoleAdmin = "admin"
	RoleAgent = "agent"
)

// WorkspaceCreated is the data of a workspace.created event.
type WorkspaceCreated struct {
	Name string `json:"name"`
}

// APIKeyCreated is the data of an api_key.created event. It never holds the
// key itself, only its id, role and display prefix.
type APIKeyCreated struct {
	KeyID  uuid.UUID `json:"key_id"`
	Role   string    `json:"role"`
	Prefix string    `json:"prefix"`
}

// Principal is who an authenticated request acts as: an API key of a
// workspace, with a role.
type Principal struct {
	WorkspaceID uuid.UUID
	KeyID       uuid.UUID
	Role        string
}

// APIKey describes a stored key; the secret itself is never stored.
type APIKey struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	Role        string
	Prefix      string
	CreatedAt   time.Time
	LastUsedAt  *time.Time
}

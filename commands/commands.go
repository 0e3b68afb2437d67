// Package commands is the write side: it validates and sanitizes commands,
// decides which events they cause and appends them under the stream locks,
// and composes consistent single-entity reads from the event store. Its
// areas are subpackages, each with a Service and the storage interfaces it
// uses: tickets (tickets, customers, mail import, the SLA clock check,
// automation simulation), rules (automation rules, SLA policies), access
// (workspaces, API keys, settings) and outbound (webhooks, Slack). This
// package holds what they share: validation (Problems), HTML sanitizing,
// plain-text cleaning, the field limits, and naming the field of an event
// that is too large.
package commands

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
)

// WorkspaceRef is the stream of workspace id (whose id is the workspace
// id): workspace, key, settings and integration events go there.
func WorkspaceRef(id uuid.UUID) helpdeskflow.StreamRef {
	return helpdeskflow.StreamRef{ID: id, WorkspaceID: id, Type: helpdeskflow.StreamWorkspace}
}

// Thousands formats n with thousands separators: 131,072.
func Thousands(n int) string {
	if n < 0 {
		return "-" + Thousands(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

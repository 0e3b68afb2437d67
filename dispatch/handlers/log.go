package handlers

import (
	"context"
	"log/slog"

	"github.com/helpdeskflow/helpdeskflow"
)

// Log is the dispatcher handler that logs every event at debug level and
// never fails. Every dispatcher runs it (see All), also one without the
// outbound handlers; it is the smallest example of a dispatch.Handler. Its
// zero value is ready to use and it is safe for concurrent use.
type Log struct {
	// Logger receives one debug record per event. Default slog.Default().
	Logger *slog.Logger
}

// Name returns "log".
func (Log) Name() string { return "log" }

// Handle logs e's id, type, stream, version and workspace at debug level.
// It always returns nil.
func (h Log) Handle(ctx context.Context, e helpdeskflow.Event) error {
	logger := h.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.DebugContext(ctx, "dispatch event",
		"event_id", e.ID, "type", e.Type, "stream_id", e.StreamID, "stream_type", e.StreamType,
		"version", e.Version, "workspace_id", e.WorkspaceID)
	return nil
}

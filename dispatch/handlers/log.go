package handlers

import (
	"context"
	"log/slog"

	"github.com/helpdeskflow/helpdeskflow"
)

// LogHandler is a Handler that logs every event at debug level and never
// fails. `helpdeskflow dev` plugs it in so the dispatcher runs before the
// real handlers exist; it is also the smallest example of a Handler. Its
// zero value is ready to use and it is safe for concurrent use.
type LogHandler struct {
	// Logger receives one debug record per event. Default slog.Default().
	Logger *slog.Logger
}

// Name returns "log".
func (LogHandler) Name() string { return "log" }

// Handle logs e's id, type, stream, version and workspace at debug level.
// It always returns nil.
func (h LogHandler) Handle(ctx context.Context, e helpdeskflow.Event) error {
	logger := h.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.DebugContext(ctx, "dispatch event",
		"event_id", e.ID, "type", e.Type, "stream_id", e.StreamID, "stream_type", e.StreamType,
		"version", e.Version, "workspace_id", e.WorkspaceID)
	return nil
}

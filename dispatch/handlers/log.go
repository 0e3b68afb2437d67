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

// Handle logs e at debug level with helpdeskflow.EventLogAttrs (its id,
// type, workspace, stream, version and the request that made it) and its
// stream type. It always returns nil.
func (h Log) Handle(ctx context.Context, e helpdeskflow.Event) error {
	logger := h.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if logger.Enabled(ctx, slog.LevelDebug) {
		logger.DebugContext(ctx, "dispatch event", append(helpdeskflow.EventLogAttrs(e), "stream_type", e.StreamType)...)
	}
	return nil
}

package helpdeskflow

import "log/slog"

// The keys of the attributes that tie log lines together. Every line about
// one API request carries LogRequestID and LogWorkspaceID (the nil uuid
// before the key is known); every line about one event carries
// LogEventID, LogWorkspaceID and, when the event was made by an API
// request, that request's LogRequestID (from its metadata); every line
// about one webhook delivery attempt carries LogDeliveryID, LogWebhookID,
// LogEventID and LogWorkspaceID. So one request can be followed from the
// API's line through the relay, the projector and the dispatcher to each
// webhook attempt of its events by grepping for its request id, then its
// event ids. Lines never carry secrets, request or response bodies, or
// event data.
const (
	LogRequestID   = "request_id"
	LogWorkspaceID = "workspace_id"
	LogEventID     = "event_id"
	LogEventType   = "event_type"
	LogStreamID    = "stream_id"
	LogVersion     = "version"
	LogDeliveryID  = "delivery_id"
	LogWebhookID   = "webhook_id"
	LogError       = "err"
)

// EventLogAttrs returns the attributes that name e in a log line:
// event_id, event_type, workspace_id, stream_id, version, and request_id
// when e was made by an API request.
func EventLogAttrs(e Event) []any {
	attrs := []any{
		slog.String(LogEventID, e.ID.String()), slog.String(LogEventType, e.Type),
		slog.String(LogWorkspaceID, e.WorkspaceID.String()), slog.String(LogStreamID, e.StreamID.String()),
		slog.Int64(LogVersion, e.Version),
	}
	if e.Metadata.RequestID != "" {
		attrs = append(attrs, slog.String(LogRequestID, e.Metadata.RequestID))
	}
	return attrs
}

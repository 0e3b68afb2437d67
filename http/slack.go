package http

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
)

// SlackIntegrations connects, disconnects and revalidates a workspace's
// Slack.
type SlackIntegrations interface {
	ConnectSlack(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd outbound.ConnectSlack) (helpdeskflow.SlackIntegration, error)
	DisconnectSlack(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata) error
	RevalidateSlack(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata) (helpdeskflow.SlackIntegration, error)
}

// SlackReader reads the Slack connection (the sealed token is ignored) and
// its notification log.
type SlackReader interface {
	SlackIntegration(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.SlackIntegration, []byte, error)
	SlackNotifications(ctx context.Context, workspaceID uuid.UUID, status string, limit int) ([]helpdeskflow.SlackNotification, error)
}

type slackJSON struct {
	ID       string                     `json:"id"`
	Provider string                     `json:"provider"`
	Status   string                     `json:"status"`
	TeamID   string                     `json:"team_id"`
	Team     string                     `json:"team"`
	Channels helpdeskflow.SlackChannels `json:"channels"`
	// Source is where the bot token came from: oauth (installed through
	// POST /v1/integrations/slack/connect; ConnectionID names that OAuth
	// connection) or token (pasted with PUT).
	Source       string  `json:"source"`
	ConnectionID *string `json:"connection_id"`
	LastError    *string `json:"last_error"`
	ConnectedAt  string  `json:"connected_at"`
	UpdatedAt    string  `json:"updated_at"`
	// Queue is shown by GET /v1/integrations[/slack] only.
	Queue *queueJSON `json:"queue,omitempty"`
}

func toSlackJSON(in helpdeskflow.SlackIntegration) slackJSON {
	out := slackJSON{ID: slackID, Provider: "slack", Status: in.Status, TeamID: in.TeamID, Team: in.Team, Channels: in.Channels,
		Source: in.Source(), LastError: nonEmpty(in.LastError), ConnectedAt: formatTime(in.ConnectedAt), UpdatedAt: formatTime(in.UpdatedAt)}
	if in.ConnectionID != uuid.Nil {
		id := in.ConnectionID.String()
		out.ConnectionID = &id
	}
	return out
}

func writeSlack(w http.ResponseWriter, in helpdeskflow.SlackIntegration) {
	writeJSON(w, http.StatusOK, toSlackJSON(in))
}

// handleSlackPut is PUT /v1/integrations/slack (admin): connect with a bot
// token (checked with Slack, stored sealed, never shown again) and the
// channels per notification kind.
func (s *Server) handleSlackPut(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var cmd outbound.ConnectSlack
	if err := decodeJSON(r, &cmd); err != nil {
		return err
	}
	in, err := s.cfg.Slack.ConnectSlack(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), cmd)
	if err != nil {
		return err
	}
	writeSlack(w, in)
	return nil
}

// handleSlackGet is GET /v1/integrations/slack (admin), with its queue of
// notifications.
func (s *Server) handleSlackGet(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ws := principalOf(r.Context()).WorkspaceID
	in, _, err := s.cfg.SlackReader.SlackIntegration(r.Context(), ws)
	if err != nil {
		return err
	}
	queues, err := s.queues(r.Context(), ws, ws)
	if err != nil {
		return err
	}
	j := toSlackJSON(in)
	j.Queue = toQueueJSON(queues[ws])
	writeJSON(w, http.StatusOK, j)
	return nil
}

// handleSlackDelete is DELETE /v1/integrations/slack (admin).
func (s *Server) handleSlackDelete(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.cfg.Slack.DisconnectSlack(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": slackID, "deleted": true})
	return nil
}

// handleSlackRevalidate is POST /v1/integrations/slack/revalidate (admin):
// checks the token with Slack (auth.test) and answers with the status.
func (s *Server) handleSlackRevalidate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ws := principalOf(r.Context()).WorkspaceID
	in, err := s.cfg.Slack.RevalidateSlack(r.Context(), ws, metadata(r))
	if err != nil {
		return err
	}
	// A refused token leaves the integration marked; show it as stored.
	if in, _, err = s.cfg.SlackReader.SlackIntegration(r.Context(), ws); err != nil {
		return err
	}
	writeSlack(w, in)
	return nil
}

type slackNotificationJSON struct {
	EventID   uuid.UUID `json:"event_id"`
	TicketID  uuid.UUID `json:"ticket_id"`
	Kind      string    `json:"kind"`
	Channel   string    `json:"channel"`
	Status    string    `json:"status"`
	Error     *string   `json:"error"`
	CreatedAt string    `json:"created_at"`
}

// handleSlackNotifications is GET /v1/integrations/slack/notifications
// (admin): the notification log, newest first; ?status=posted, skipped or
// failed; ?limit= (1–100).
func (s *Server) handleSlackNotifications(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	status := r.URL.Query().Get("status")
	switch status {
	case "", helpdeskflow.SlackPosted, helpdeskflow.SlackSkipped, helpdeskflow.SlackFailed:
	default:
		return fieldError("status", "must be posted, skipped or failed")
	}
	limit, err := listLimit(r)
	if err != nil {
		return err
	}
	ns, err := s.cfg.SlackReader.SlackNotifications(r.Context(), principalOf(r.Context()).WorkspaceID, status, limit)
	if err != nil {
		return err
	}
	data := make([]slackNotificationJSON, len(ns))
	for i, n := range ns {
		data[i] = slackNotificationJSON{EventID: n.EventID, TicketID: n.TicketID, Kind: n.Kind, Channel: n.Channel, Status: n.Status,
			Error: nonEmpty(n.Error), CreatedAt: formatTime(n.CreatedAt)}
	}
	writeList(w, data, "")
	return nil
}

package http

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
)

// Connections runs OAuth connections (integrations.Manager).
type Connections interface {
	Connect(ctx context.Context, workspaceID uuid.UUID, provider, shop string) (helpdeskflow.Connection, string, error)
	// ConnectSlack starts installing Slack through OAuth v2: the
	// callback's bot token becomes the workspace's Slack integration with
	// these channels (integrations.Manager.ConnectSlack).
	ConnectSlack(ctx context.Context, workspaceID uuid.UUID, channels helpdeskflow.SlackChannels) (helpdeskflow.Connection, string, error)
	Callback(ctx context.Context, provider, state, code, providerError string) (helpdeskflow.Connection, error)
	Disconnect(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error
	Explain(c helpdeskflow.Connection) string
	// ConnectIMAP connects (or reconnects) an Outlook mailbox with server
	// settings and an app password, checked by logging in.
	ConnectIMAP(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, settings imapmail.Settings) (helpdeskflow.Connection, error)
}

// outlookProvider is the provider of IMAP/SMTP mailboxes, connected with
// settings instead of OAuth.
const outlookProvider = "outlook"

// mailProviders are the providers whose connections are synced mailboxes.
var mailProviders = []string{"google", outlookProvider}

// ConnectionReader reads a workspace's connections and their job queues
// (for Slack, the queue whose connection id is the workspace id), and
// schedules a mailbox's sync.
type ConnectionReader interface {
	Connection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, error)
	Connections(ctx context.Context, workspaceID uuid.UUID) ([]helpdeskflow.Connection, error)
	IntegrationQueues(ctx context.Context, workspaceID uuid.UUID, ids []uuid.UUID, now time.Time) (map[uuid.UUID]helpdeskflow.IntegrationQueue, error)
	SyncNow(ctx context.Context, workspaceID, id uuid.UUID, now time.Time) error
}

// slackID is the id of the workspace's Slack bot-token integration under
// /v1/integrations/{id}; OAuth connections have uuids.
const slackID = "slack"

type connectionJSON struct {
	ID          string         `json:"id"`
	Provider    string         `json:"provider"`
	Status      string         `json:"status"`
	Account     string         `json:"account"`
	Scopes      string         `json:"scopes"`
	Details     map[string]any `json:"details"`
	TokenExpiry *string        `json:"token_expires_at"`
	LastSyncAt  *string        `json:"last_sync_at"`
	NextSyncAt  *string        `json:"next_sync_at"`
	Failures    int            `json:"sync_failures"`
	LastError   *string        `json:"last_error"`
	ErrorClass  *string        `json:"last_error_class"`
	LastErrorAt *string        `json:"last_error_at"`
	NextRetryAt *string        `json:"next_retry_at"`
	Explanation string         `json:"explanation"`
	CreatedAt   string         `json:"created_at"`
	UpdatedAt   string         `json:"updated_at"`
	// Queue is shown by GET /v1/integrations[/{id}] only.
	Queue *queueJSON `json:"queue,omitempty"`
}

// queueJSON is an integration's queue of calls to its service (Slack
// notifications, customer lookups).
type queueJSON struct {
	Pending         int             `json:"pending"`
	OldestPendingAt *string         `json:"oldest_pending_at"`
	FailedLast24h   int             `json:"failed_last_24h"`
	LastFailure     *jobFailureJSON `json:"last_failure"`
}

type jobFailureJSON struct {
	At         string `json:"at"`
	Kind       string `json:"kind"`
	ErrorClass string `json:"error_class"`
	Error      string `json:"error"`
	Final      bool   `json:"final"`
}

func toQueueJSON(q helpdeskflow.IntegrationQueue) *queueJSON {
	out := &queueJSON{Pending: q.Pending, OldestPendingAt: optionalTime(q.OldestPendingAt), FailedLast24h: q.FailedLast24h}
	if f := q.LastFailure; f != nil {
		out.LastFailure = &jobFailureJSON{At: formatTime(f.At), Kind: f.Kind, ErrorClass: f.ErrorClass, Error: f.Error, Final: f.Final}
	}
	return out
}

// queues reads the job queues of the workspace's connections ids.
func (s *Server) queues(ctx context.Context, workspaceID uuid.UUID, ids ...uuid.UUID) (map[uuid.UUID]helpdeskflow.IntegrationQueue, error) {
	return s.cfg.ConnectionReader.IntegrationQueues(ctx, workspaceID, ids, s.cfg.Now())
}

// connections returns the OAuth manager, or EUnavailable when this server
// has none.
func (s *Server) connections() (Connections, error) {
	if s.cfg.Connections == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EUnavailable, "OAuth integrations need HDF_SECRET_KEYS on this server")
	}
	return s.cfg.Connections, nil
}

func (s *Server) toConnectionJSON(c helpdeskflow.Connection) connectionJSON {
	details := c.Details
	if details == nil {
		details = map[string]any{}
	}
	return connectionJSON{ID: c.ID.String(), Provider: c.Provider, Status: c.Status, Account: c.Account, Scopes: c.Scopes, Details: details,
		TokenExpiry: optionalTime(c.TokenExpiry), LastSyncAt: optionalTime(c.LastSyncAt), NextSyncAt: optionalTime(c.NextSyncAt),
		Failures: c.SyncFailures, LastError: nonEmpty(c.LastError),
		ErrorClass: nonEmpty(c.LastErrorClass), LastErrorAt: optionalTime(c.LastErrorAt), NextRetryAt: optionalTime(c.NextRetryAt),
		Explanation: explain(s.cfg.Connections, c), CreatedAt: formatTime(c.CreatedAt), UpdatedAt: formatTime(c.UpdatedAt)}
}

func explain(cs Connections, c helpdeskflow.Connection) string {
	if cs == nil {
		return ""
	}
	return cs.Explain(c)
}

// handleIntegrationList is GET /v1/integrations (admin): the OAuth
// connections, oldest first, then Slack when connected (id "slack").
func (s *Server) handleIntegrationList(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ws := principalOf(r.Context()).WorkspaceID
	conns, err := s.cfg.ConnectionReader.Connections(r.Context(), ws)
	if err != nil {
		return err
	}
	ids := []uuid.UUID{ws} // Slack's jobs are queued under the workspace id
	for _, c := range conns {
		ids = append(ids, c.ID)
	}
	queues, err := s.queues(r.Context(), ws, ids...)
	if err != nil {
		return err
	}
	data := []any{}
	for _, c := range conns {
		j := s.toConnectionJSON(c)
		j.Queue = toQueueJSON(queues[c.ID])
		data = append(data, j)
	}
	if in, _, err := s.cfg.SlackReader.SlackIntegration(r.Context(), ws); err == nil {
		j := toSlackJSON(in)
		j.Queue = toQueueJSON(queues[ws])
		data = append(data, j)
	} else if helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound {
		return err
	}
	writeList(w, data, "")
	return nil
}

// connectionOf reads the connection {id} names in the principal's
// workspace: ENotFound for an unknown id or one that is not a UUID.
func (s *Server) connectionOf(r *http.Request, p httprouter.Params) (helpdeskflow.Connection, error) {
	id, err := pathID(p, "id", "integration")
	if err != nil {
		return helpdeskflow.Connection{}, err
	}
	return s.cfg.ConnectionReader.Connection(r.Context(), principalOf(r.Context()).WorkspaceID, id)
}

// handleIntegrationGet is GET /v1/integrations/{id} (admin): a connection
// with its state explained in words, or Slack.
func (s *Server) handleIntegrationGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if p.ByName("id") == slackID {
		return s.handleSlackGet(w, r, p)
	}
	c, err := s.connectionOf(r, p)
	if err != nil {
		return err
	}
	ws := principalOf(r.Context()).WorkspaceID
	queues, err := s.queues(r.Context(), ws, c.ID)
	if err != nil {
		return err
	}
	j := s.toConnectionJSON(c)
	j.Queue = toQueueJSON(queues[c.ID])
	writeJSON(w, http.StatusOK, j)
	return nil
}

// handleIntegrationDelete is DELETE /v1/integrations/{id} (admin).
func (s *Server) handleIntegrationDelete(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if p.ByName("id") == slackID {
		return s.handleSlackDelete(w, r, p)
	}
	id, err := pathID(p, "id", "integration")
	if err != nil {
		return err
	}
	cs, err := s.connections()
	if err != nil {
		return err
	}
	if err := cs.Disconnect(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
	return nil
}

// slackOnly runs handle for {id} "slack"; other integrations have no such
// operation.
func slackOnly(handle func(http.ResponseWriter, *http.Request, httprouter.Params) error, what string) func(http.ResponseWriter, *http.Request, httprouter.Params) error {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
		if p.ByName("id") != slackID {
			return helpdeskflow.Errorf(helpdeskflow.ENotFound, "integration %q has no %s; only Slack (id \"slack\") does", p.ByName("id"), what)
		}
		return handle(w, r, p)
	}
}

type connectStartedJSON struct {
	Connection       connectionJSON `json:"connection"`
	AuthorizationURL *string        `json:"authorization_url"`
}

// handleIntegrationConnect is POST /v1/integrations/{provider}/connect
// (admin): {"shop"} for Shopify. 201 with the pending connection and the
// provider's authorization URL to send the user to. For outlook the body
// holds the server settings and app password: 201 with the connection,
// active, once both servers accepted the login (authorization_url null).
// For slack the body names the channels ({"channels": {...}}, as for PUT
// /v1/integrations/slack): the installed bot token becomes the workspace's
// Slack integration; 409 while one with a pasted token exists.
func (s *Server) handleIntegrationConnect(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if p.ByName("id") == outlookProvider {
		return s.handleOutlookConnect(w, r)
	}
	var body struct {
		Shop     string                      `json:"shop"`
		Channels *helpdeskflow.SlackChannels `json:"channels"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	cs, err := s.connections()
	if err != nil {
		return err
	}
	var c helpdeskflow.Connection
	var authURL string
	switch {
	case p.ByName("id") == slackID:
		var channels helpdeskflow.SlackChannels
		if body.Channels != nil {
			channels = *body.Channels
		}
		c, authURL, err = cs.ConnectSlack(r.Context(), principalOf(r.Context()).WorkspaceID, channels)
	case body.Channels != nil:
		return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the request has invalid fields; see details",
			Details: []helpdeskflow.FieldProblem{{Field: "channels", Problem: "only Slack takes channels"}}}
	default:
		c, authURL, err = cs.Connect(r.Context(), principalOf(r.Context()).WorkspaceID, p.ByName("id"), body.Shop)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, connectStartedJSON{Connection: s.toConnectionJSON(c), AuthorizationURL: &authURL})
	return nil
}

// handleOutlookConnect connects an IMAP/SMTP mailbox from the settings in
// the body.
func (s *Server) handleOutlookConnect(w http.ResponseWriter, r *http.Request) error {
	var settings imapmail.Settings
	if err := decodeJSON(r, &settings); err != nil {
		return err
	}
	cs, err := s.connections()
	if err != nil {
		return err
	}
	c, err := cs.ConnectIMAP(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), settings)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, connectStartedJSON{Connection: s.toConnectionJSON(c)})
	return nil
}

// handleIntegrationSync is POST /v1/integrations/{id}/sync (admin): the
// mailbox is synced at once (within a second or so) instead of at its
// next interval. 202 with the connection. A connection that is not an
// active mailbox is 409.
func (s *Server) handleIntegrationSync(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	c, err := s.connectionOf(r, p)
	if err != nil {
		return err
	}
	id, ws := c.ID, principalOf(r.Context()).WorkspaceID
	if !slices.Contains(mailProviders, c.Provider) {
		return helpdeskflow.Errorf(helpdeskflow.EConflict, "integration %s (%s) is not a mailbox; only Gmail and Outlook connections sync", id, c.Provider)
	}
	if c.Status != helpdeskflow.ConnectionActive {
		return helpdeskflow.Errorf(helpdeskflow.EConflict, "integration %s is %s: %s", id, c.Status, explain(s.cfg.Connections, c))
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	if err := s.cfg.ConnectionReader.SyncNow(r.Context(), ws, id, now); err != nil {
		return err
	}
	c.NextSyncAt = &now
	writeJSON(w, http.StatusAccepted, s.toConnectionJSON(c))
	return nil
}

// handleIntegrationCallback is GET /v1/integrations/{provider}/callback
// (public: the provider redirects the user's browser here; the sealed
// state authenticates it): exchanges the code and answers with the
// connection.
func (s *Server) handleIntegrationCallback(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	q := r.URL.Query()
	if q.Get("state") == "" {
		return fieldError("state", "required: open this page only through the provider's redirect")
	}
	cs, err := s.connections()
	if err != nil {
		return err
	}
	c, err := cs.Callback(r.Context(), p.ByName("id"), q.Get("state"), q.Get("code"), q.Get("error"))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.toConnectionJSON(c))
	return nil
}

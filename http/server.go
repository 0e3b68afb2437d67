// Package http serves HelpDeskFlow's public HTTP API: routing, API key
// authentication, request ids, metrics, error mapping and the handlers. It
// knows the write side and the read models only through the interfaces
// declared here.
package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
)

// Tickets is the write side and consistent read of tickets.
type Tickets interface {
	CreateTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.CreateTicket) (helpdeskflow.Ticket, error)
	// CreateTicketKept is CreateTicket keeping respond's answer with held
	// in the same transaction.
	CreateTicketKept(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.CreateTicket,
		held helpdeskflow.HeldIdempotencyKey, respond func(helpdeskflow.Ticket) (helpdeskflow.IdempotentResponse, error)) (helpdeskflow.IdempotentResponse, error)
	// CreateTickets creates a batch's tickets, each decided alone, in one
	// transaction that also keeps respond's response with held (if any).
	CreateTickets(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, items []tickets.Item[tickets.CreateTicket],
		held *helpdeskflow.HeldIdempotencyKey, respond tickets.Respond[tickets.TicketResult]) (helpdeskflow.IdempotentResponse, error)
	GetTicket(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (helpdeskflow.Ticket, error)
	// FindTicket is GetTicket of the ticket holding an external id.
	FindTicket(ctx context.Context, workspaceID uuid.UUID, externalID string, includeInternal bool) (helpdeskflow.Ticket, error)
	// GetTicketRead is GetTicket with the answer's encoding kept while the
	// ticket and its customer stay unchanged (TicketRead.Encoded).
	GetTicketRead(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (tickets.TicketRead, error)
	UpdateTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd tickets.UpdateTicket, includeInternal bool) (helpdeskflow.Ticket, error)
	AddMessage(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd tickets.AddMessage, includeInternal bool) (helpdeskflow.Ticket, error)
	// TicketAudit lists the changes of versions from..to (to 0: the last).
	TicketAudit(ctx context.Context, workspaceID, id uuid.UUID, from, to int64, includeInternal bool) ([]tickets.AuditEntry, error)
	// GetTicketAsOf is GetTicket as of a past point, and the time it shows.
	GetTicketAsOf(ctx context.Context, workspaceID, id uuid.UUID, asOf helpdeskflow.AsOf, includeInternal bool) (helpdeskflow.Ticket, time.Time, error)
}

// Customers is the write side and consistent read of customers.
type Customers interface {
	UpsertCustomer(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.UpsertCustomer) (helpdeskflow.Customer, bool, error)
	// UpsertCustomers upserts a batch's customers as CreateTickets does.
	UpsertCustomers(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, items []tickets.Item[tickets.UpsertCustomer],
		held *helpdeskflow.HeldIdempotencyKey, respond tickets.Respond[tickets.CustomerResult]) (helpdeskflow.IdempotentResponse, error)
	GetCustomer(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Customer, error)
	// GetCustomerAsOf is GetCustomer as of a past point.
	GetCustomerAsOf(ctx context.Context, workspaceID, id uuid.UUID, asOf helpdeskflow.AsOf) (helpdeskflow.Customer, error)
	FindCustomer(ctx context.Context, workspaceID uuid.UUID, email, provider, externalID string) (helpdeskflow.Customer, error)
	UpdateCustomer(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd tickets.UpdateCustomer) (helpdeskflow.Customer, error)
	MergeCustomers(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, targetID, sourceID uuid.UUID) (helpdeskflow.Customer, error)
}

// CustomerLister lists customers from the read model.
type CustomerLister interface {
	ListCustomers(ctx context.Context, workspaceID uuid.UUID, filter helpdeskflow.CustomerFilter) (helpdeskflow.CustomerPage, error)
}

// EventFeed reads a workspace's events in commit order, below the commit
// horizon, after a position (the zero Position for the beginning).
type EventFeed interface {
	ReadAfter(ctx context.Context, after helpdeskflow.Position, limit int, workspaceID uuid.UUID) ([]helpdeskflow.Event, error)
}

// TicketLister lists tickets from the read model.
type TicketLister interface {
	ListTickets(ctx context.Context, workspaceID uuid.UUID, filter helpdeskflow.TicketFilter) (helpdeskflow.TicketPage, error)
}

// Authenticator resolves an API key (already checked for format) to what it
// grants; EUnauthorized for unknown or revoked keys.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (helpdeskflow.Access, error)
	// Cached returns what key grants when the process holds it in memory
	// (no I/O), or false.
	Cached(key string) (helpdeskflow.Access, bool)
}

// Admin is the write side of workspace configuration: API keys, the IP
// blocklist and rate limits. Each change holds on every API process when
// it returns.
type Admin interface {
	CreateAPIKey(ctx context.Context, md helpdeskflow.Metadata, workspaceID uuid.UUID, cmd access.CreateAPIKey) (access.NewKey, error)
	RevokeAPIKey(ctx context.Context, md helpdeskflow.Metadata, workspaceID, id uuid.UUID) (helpdeskflow.APIKey, error)
	SetIPBlocklist(ctx context.Context, md helpdeskflow.Metadata, workspaceID uuid.UUID, cidrs []string, caller netip.Addr) ([]netip.Prefix, error)
	SetRateLimits(ctx context.Context, md helpdeskflow.Metadata, workspaceID uuid.UUID, cmd access.SetRateLimits) (helpdeskflow.RateLimitPolicy, error)
}

// AdminReader reads workspace configuration.
type AdminReader interface {
	ListAPIKeys(ctx context.Context, workspaceID uuid.UUID, cursor string, limit int) (helpdeskflow.APIKeyPage, error)
	WorkspaceSettings(ctx context.Context, workspaceID uuid.UUID) (helpdeskflow.WorkspaceSettings, error)
}

// RequestLog receives one entry per API request, after its response. Log
// must not block.
type RequestLog interface {
	Log(helpdeskflow.APIRequest)
}

// Checker is a dependency /readyz checks; it returns nil when reachable.
type Checker func(ctx context.Context) error

// Config holds a Server's collaborators. Tickets, Customers, CustomerLister, Lister, Events, Auth, Admin,
// AdminReader, Automations, Simulator, SLAPolicies, Webhooks, WebhookReader, Slack, SlackReader,
// ConnectionReader and Limiter are required; without Connections (no
// HDF_SECRET_KEYS) OAuth integrations answer 503. RequestLog may be nil (no request
// log); Logger defaults to slog.Default(), Registerer and Gatherer to
// nothing (no /metrics content). TrustedProxies are the peers whose
// X-Forwarded-For is believed when finding the client's IP. Idempotency
// keeps the Idempotency-Keys of POST and PATCH requests; when nil, the
// header is ignored. PositionSealer and ReadPositions give and take
// positions (X-HDF-Position, min_position: see positions.go); without
// both, no response carries one and min_position is refused.
type Config struct {
	Tickets        Tickets
	Customers      Customers
	CustomerLister CustomerLister
	Lister         TicketLister
	Events         EventFeed
	Auth           Authenticator
	Admin          Admin
	AdminReader    AdminReader
	Automations    Automations
	Simulator      AutomationSimulator
	SLAPolicies    SLAPolicies
	Webhooks       Webhooks
	WebhookReader  WebhookReader
	Slack          SlackIntegrations
	SlackReader    SlackReader
	// Connections and ConnectionReader serve OAuth integrations.
	Connections      Connections
	ConnectionReader ConnectionReader
	// LinkedProfiles looks customers up in Shopify and Stripe; nil (no
	// HDF_SECRET_KEYS) answers 503.
	LinkedProfiles LinkedProfiles
	// WebhookReplays starts and reads webhook replays; nil answers 503.
	WebhookReplays WebhookReplays
	Limiter        *ratelimit.Limiter
	// UnauthenticatedLimit is each client IP's budget of requests without
	// a valid key (see unauthenticated.go). Default
	// DefaultUnauthenticatedLimit.
	UnauthenticatedLimit helpdeskflow.RateLimit
	RequestLog           RequestLog
	Idempotency          Idempotency
	PositionSealer       PositionSealer
	ReadPositions        ReadPositions
	TrustedProxies       []netip.Prefix
	Ready                map[string]Checker
	Logger               *slog.Logger
	Registerer           prometheus.Registerer
	Gatherer             prometheus.Gatherer
	// Now is the clock SLA status is shown at (default time.Now); give it
	// the same clock as the commands' service.
	Now func() time.Time
}

// Validate reports every missing collaborator at once.
func (c *Config) Validate() error {
	var errs []error
	for name, missing := range map[string]bool{
		"Tickets": c.Tickets == nil, "Customers": c.Customers == nil, "CustomerLister": c.CustomerLister == nil, "Lister": c.Lister == nil, "Events": c.Events == nil, "Auth": c.Auth == nil,
		"Admin": c.Admin == nil, "AdminReader": c.AdminReader == nil, "Limiter": c.Limiter == nil, "Automations": c.Automations == nil, "Simulator": c.Simulator == nil, "SLAPolicies": c.SLAPolicies == nil, "Webhooks": c.Webhooks == nil, "WebhookReader": c.WebhookReader == nil, "Slack": c.Slack == nil, "SlackReader": c.SlackReader == nil,
		"ConnectionReader": c.ConnectionReader == nil,
	} {
		if missing {
			errs = append(errs, fmt.Errorf("http: Config.%s is required", name))
		}
	}
	return errors.Join(errs...)
}

// Server is the API's http.Handler.
type Server struct {
	cfg          Config
	router       *httprouter.Router
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	throttled    prometheus.Counter
}

// NewServer builds the routes. Its metrics are
// helpdeskflow_http_requests_total{method,route,status},
// helpdeskflow_http_request_duration_seconds{method,route},
// helpdeskflow_auth_failures_total{reason} and
// helpdeskflow_soft_throttle_delayed_requests_total.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:    cfg,
		router: httprouter.New(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_http_requests_total", Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "helpdeskflow_http_request_duration_seconds", Help: "HTTP request latency by method and route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
	}
	s.authFailures, s.throttled = newAuthMetrics()
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.latency, s.authFailures, s.throttled} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	s.routes()
	return s, nil
}

func newAuthMetrics() (*prometheus.CounterVec, prometheus.Counter) {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpdeskflow_auth_failures_total",
			Help: "Requests refused by authentication, by reason: missing, malformed, unknown_or_revoked, key_in_wrong_place, blocked_ip, forbidden.",
		}, []string{"reason"}),
		prometheus.NewCounter(prometheus.CounterOpts{
			Name: "helpdeskflow_soft_throttle_delayed_requests_total",
			Help: "Responses delayed because their key is in soft-throttle mode.",
		})
}

// route describes one API route; the auth, role and tenant-isolation tests
// walk this table. Routes are authenticated unless public; admin routes
// need an admin key; category is the rate limit bucket (empty only for
// public routes; other public routes count against the client IP's
// unauthenticated budget, except probes: health, readiness, metrics);
// idKind names what the :id parameter is, for the tenant isolation test;
// batch routes take up to MaxBatchBodyBytes, count each item against the
// rate limit and keep their idempotent response in their own transaction
// (see batch.go); keeps marks a single route that keeps its idempotent
// response in its own transaction too (POST /v1/tickets).
type route struct {
	method, path string
	public       bool
	probe        bool
	admin        bool
	batch        bool
	keeps        bool
	category     string
	idKind       string
	handle       func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error
}

// What a route's :id names (RouteInfo.IDKind).
const (
	IDTicket   = "ticket"
	IDCustomer = "customer"
	IDAPIKey   = "api_key"
	// IDAutomation is an automation rule's id.
	IDAutomation = "automation"
	// IDSLAPolicy is an SLA policy's id.
	IDSLAPolicy = "sla_policy"
	// IDWebhook is a webhook's id.
	IDWebhook = "webhook"
	// IDIntegration is an OAuth connection's id, "slack", or (connect,
	// callback) a provider name.
	IDIntegration = "integration"
)

func (s *Server) table() []route {
	return []route{
		{method: "GET", path: "/healthz", public: true, probe: true, handle: s.handleHealthz},
		{method: "GET", path: "/readyz", public: true, probe: true, handle: s.handleReadyz},
		{method: "GET", path: "/metrics", public: true, probe: true, handle: s.handleMetrics},
		{method: "GET", path: "/v1/openapi.json", public: true, handle: s.handleOpenAPI},
		{method: "POST", path: "/v1/tickets", category: helpdeskflow.RateTicketsCreate, keeps: true, handle: s.handleTicketCreate},
		{method: "GET", path: "/v1/tickets", category: helpdeskflow.RateTicketsRead, handle: s.handleTicketList},
		{method: "GET", path: "/v1/tickets/:id", category: helpdeskflow.RateTicketsRead, idKind: IDTicket, handle: s.handleTicketGet},
		{method: "PATCH", path: "/v1/tickets/:id", category: helpdeskflow.RateTicketsUpdate, idKind: IDTicket, handle: s.handleTicketUpdate},
		{method: "POST", path: "/v1/tickets/:id/messages", category: helpdeskflow.RateTicketsUpdate, idKind: IDTicket, handle: s.handleMessageAdd},
		{method: "GET", path: "/v1/tickets/:id/audit", category: helpdeskflow.RateTicketsRead, idKind: IDTicket, handle: s.handleTicketAudit},
		{method: "GET", path: "/v1/events", category: helpdeskflow.RateEventsRead, handle: s.handleEvents},
		{method: "POST", path: "/v1/customers", category: helpdeskflow.RateCustomersWrite, handle: s.handleCustomerUpsert},
		{method: "POST", path: "/v1/batch/tickets", category: helpdeskflow.RateTicketsCreate, batch: true, handle: s.handleTicketBatch},
		{method: "POST", path: "/v1/batch/customers", category: helpdeskflow.RateCustomersWrite, batch: true, handle: s.handleCustomerBatch},
		{method: "GET", path: "/v1/customers", category: helpdeskflow.RateCustomersRead, handle: s.handleCustomerFind},
		{method: "GET", path: "/v1/customers/:id", category: helpdeskflow.RateCustomersRead, idKind: IDCustomer, handle: s.handleCustomerGet},
		{method: "PATCH", path: "/v1/customers/:id", category: helpdeskflow.RateCustomersWrite, idKind: IDCustomer, handle: s.handleCustomerUpdate},
		{method: "POST", path: "/v1/customers/:id/merge", category: helpdeskflow.RateCustomersWrite, idKind: IDCustomer, handle: s.handleCustomerMerge},
		{method: "POST", path: "/v1/customers/:id/linked-profiles/refresh", category: helpdeskflow.RateCustomersWrite, idKind: IDCustomer, handle: s.handleLinkedProfilesRefresh},
		{method: "POST", path: "/v1/api-keys", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleAPIKeyCreate},
		{method: "GET", path: "/v1/api-keys", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleAPIKeyList},
		{method: "DELETE", path: "/v1/api-keys/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDAPIKey, handle: s.handleAPIKeyRevoke},
		{method: "POST", path: "/v1/automations", admin: true, category: helpdeskflow.RateAdmin, handle: s.automationRules().handleCreate},
		{method: "GET", path: "/v1/automations", admin: true, category: helpdeskflow.RateAdmin, handle: s.automationRules().handleList},
		{method: "POST", path: "/v1/automations/simulate", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleAutomationSimulate},
		{method: "GET", path: "/v1/automations/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDAutomation, handle: s.automationRules().handleGet},
		{method: "PUT", path: "/v1/automations/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDAutomation, handle: s.automationRules().handleReplace},
		{method: "DELETE", path: "/v1/automations/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDAutomation, handle: s.automationRules().handleDelete},
		{method: "POST", path: "/v1/sla-policies", admin: true, category: helpdeskflow.RateAdmin, handle: s.slaPolicies().handleCreate},
		{method: "GET", path: "/v1/sla-policies", admin: true, category: helpdeskflow.RateAdmin, handle: s.slaPolicies().handleList},
		{method: "GET", path: "/v1/sla-policies/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDSLAPolicy, handle: s.slaPolicies().handleGet},
		{method: "PUT", path: "/v1/sla-policies/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDSLAPolicy, handle: s.slaPolicies().handleReplace},
		{method: "DELETE", path: "/v1/sla-policies/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDSLAPolicy, handle: s.slaPolicies().handleDelete},
		{method: "POST", path: "/v1/webhooks", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleWebhookCreate},
		{method: "GET", path: "/v1/webhooks", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleWebhookList},
		{method: "GET", path: "/v1/webhooks/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDWebhook, handle: s.handleWebhookGet},
		{method: "PATCH", path: "/v1/webhooks/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDWebhook, handle: s.handleWebhookUpdate},
		{method: "DELETE", path: "/v1/webhooks/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDWebhook, handle: s.handleWebhookDelete},
		{method: "POST", path: "/v1/webhooks/:id/rotate-secret", admin: true, category: helpdeskflow.RateAdmin, idKind: IDWebhook, handle: s.handleWebhookRotate},
		{method: "GET", path: "/v1/webhooks/:id/deliveries", admin: true, category: helpdeskflow.RateAdmin, idKind: IDWebhook, handle: s.handleDeliveryList},
		{method: "POST", path: "/v1/webhooks/:id/deliveries/:delivery_id/redeliver", admin: true, category: helpdeskflow.RateAdmin, idKind: IDWebhook, handle: s.handleRedeliver},
		{method: "POST", path: "/v1/webhooks/:id/replay", admin: true, category: helpdeskflow.RateAdmin, idKind: IDWebhook, handle: s.handleWebhookReplay},
		{method: "GET", path: "/v1/webhooks/:id/replays/:replay_id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDWebhook, handle: s.handleWebhookReplayGet},
		{method: "GET", path: "/v1/integrations", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleIntegrationList},
		{method: "POST", path: "/v1/integrations/:id/connect", admin: true, category: helpdeskflow.RateAdmin, idKind: IDIntegration, handle: s.handleIntegrationConnect},
		{method: "GET", path: "/v1/integrations/:id/callback", public: true, handle: s.handleIntegrationCallback},
		{method: "PUT", path: "/v1/integrations/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDIntegration, handle: slackOnly(s.handleSlackPut, "configuration by PUT")},
		{method: "GET", path: "/v1/integrations/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDIntegration, handle: s.handleIntegrationGet},
		{method: "POST", path: "/v1/integrations/:id/revalidate", admin: true, category: helpdeskflow.RateAdmin, idKind: IDIntegration, handle: slackOnly(s.handleSlackRevalidate, "revalidation (reconnect an OAuth integration with connect)")},
		{method: "GET", path: "/v1/integrations/:id/notifications", admin: true, category: helpdeskflow.RateAdmin, idKind: IDIntegration, handle: slackOnly(s.handleSlackNotifications, "notification log")},
		{method: "DELETE", path: "/v1/integrations/:id", admin: true, category: helpdeskflow.RateAdmin, idKind: IDIntegration, handle: s.handleIntegrationDelete},
		{method: "POST", path: "/v1/integrations/:id/sync", admin: true, category: helpdeskflow.RateAdmin, idKind: IDIntegration, handle: s.handleIntegrationSync},
		{method: "GET", path: "/v1/ip-blocklist", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleIPBlocklistGet},
		{method: "PUT", path: "/v1/ip-blocklist", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleIPBlocklistPut},
		{method: "GET", path: "/v1/rate-limits", category: helpdeskflow.RateAdmin, handle: s.handleRateLimitsGet},
		{method: "PUT", path: "/v1/rate-limits", admin: true, category: helpdeskflow.RateAdmin, handle: s.handleRateLimitsPut},
	}
}

// RouteInfo describes a route of the API: its method and pattern, whether
// it needs no key (Public) or an admin key (Admin), its rate limit
// category, and what its :id parameter names ("ticket", "api_key"; empty
// without one).
type RouteInfo struct {
	Method, Path string
	Public       bool
	Admin        bool
	Category     string
	IDKind       string
}

// Routes lists every route, for documentation and for tests that must
// cover each one (tenant isolation, roles).
func (s *Server) Routes() []RouteInfo {
	var out []RouteInfo
	for _, rt := range s.table() {
		out = append(out, RouteInfo{Method: rt.method, Path: rt.path, Public: rt.public, Admin: rt.admin, Category: rt.category, IDKind: rt.idKind})
	}
	return out
}

func (s *Server) routes() {
	for _, rt := range s.table() {
		s.router.Handle(rt.method, rt.path, s.wrap(rt))
	}
	s.router.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wrap(route{method: r.Method, path: "unmatched", public: true, handle: func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
			return helpdeskflow.Errorf(helpdeskflow.ENotFound, "no route %s %s", r.Method, r.URL.Path)
		}})(w, r, nil)
	})
	s.router.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wrap(route{method: r.Method, path: "unmatched", public: true, handle: func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
			return helpdeskflow.Errorf(helpdeskflow.EMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
		}})(w, r, nil)
	})
	s.router.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		// httprouter hands over the request it recovered, without the
		// context wrap added: the request id is in the response header.
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, w.Header().Get("X-Request-Id")))
		logRequest(r.Context(), s.cfg.Logger, slog.LevelError, "handler panicked", "path", r.URL.Path, "panic", v)
		writeError(w, r, s.cfg.Logger, helpdeskflow.Errorf(helpdeskflow.EInternal, "internal error"))
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

type ctxKey int

const (
	requestIDKey ctxKey = iota
	accessKey
	clientIPKey
	heldKeyKey // a batch's held Idempotency-Key (see batch.go)
)

func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// logRequest logs msg about the request of ctx at level, its request_id
// and workspace_id (the nil uuid before the key is known) before args.
func logRequest(ctx context.Context, logger *slog.Logger, level slog.Level, msg string, args ...any) {
	if !logger.Enabled(ctx, level) {
		return
	}
	logger.Log(ctx, level, msg, append([]any{slog.String(helpdeskflow.LogRequestID, requestIDOf(ctx)),
		slog.String(helpdeskflow.LogWorkspaceID, principalOf(ctx).WorkspaceID.String())}, args...)...)
}

// accessOf is what the request's key grants (zero on public routes).
func accessOf(ctx context.Context) helpdeskflow.Access {
	a, _ := ctx.Value(accessKey).(helpdeskflow.Access)
	return a
}

func principalOf(ctx context.Context) helpdeskflow.Principal { return accessOf(ctx).Principal }

func clientIPOf(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientIPKey).(netip.Addr)
	return a
}

// statusRecorder remembers the status a handler wrote, for metrics and the
// request log, and calls beforeHeader (if set) once, just before the
// header is written.
type statusRecorder struct {
	http.ResponseWriter
	status       int
	beforeHeader func(http.Header)
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
		if r.beforeHeader != nil {
			r.beforeHeader(r.Header())
		}
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

// wrap gives every route the same envelope, in this order: a request id;
// authentication (key in the right place, Bearer, format, known and not
// revoked, client IP not blocked) before any business logic; the rate
// limit of the route's category, whose headers every authenticated
// response carries; the role check; the soft-throttle delay; the handler;
// error mapping, metrics and the request log. A response to a request
// that appended events carries their position (X-HDF-Position).
func (s *Server) wrap(rt route) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		start := time.Now()
		requestID := "req_" + strings.ReplaceAll(uuid.NewString(), "-", "")
		w.Header().Set("X-Request-Id", requestID)
		ip := clientIP(r, s.cfg.TrustedProxies)
		ctx := context.WithValue(r.Context(), requestIDKey, requestID)
		ctx = context.WithValue(ctx, clientIPKey, ip)
		ctx, writes := helpdeskflow.RecordWrites(ctx)
		r = r.WithContext(ctx)
		// r is the request admit authenticates in place: by the time the
		// header goes out it names the workspace.
		rec := &statusRecorder{ResponseWriter: w, beforeHeader: func(h http.Header) { s.setWritePosition(h, r, writes) }}
		entry := helpdeskflow.APIRequest{
			Time: start.UTC(), RequestID: requestID, Method: r.Method, Route: rt.path, Path: r.URL.Path,
			ClientIP: ip.String(), UserAgent: r.UserAgent(), RateLimitCategory: rt.category,
		}

		err := s.admit(rec, r, rt, &entry)
		if err == nil {
			err = s.runHandler(rec, r, rt, p, &entry)
		}
		if err != nil {
			entry.ErrorCode = helpdeskflow.ErrorCode(err)
			writeError(rec, r, s.cfg.Logger, err)
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		status := strconv.Itoa(rec.status)
		latency := time.Since(start)
		s.requests.WithLabelValues(r.Method, rt.path, status).Inc()
		s.latency.WithLabelValues(r.Method, rt.path).Observe(latency.Seconds())
		// One line per request at debug level: where following a request
		// through the logs starts (its events carry the same request_id).
		logRequest(r.Context(), s.cfg.Logger, slog.LevelDebug, "http request", "method", r.Method, "route", rt.path,
			"status", rec.status, "duration_ms", float64(latency.Microseconds())/1000)
		if s.cfg.RequestLog != nil {
			entry.Status, entry.Latency = rec.status, latency
			s.cfg.RequestLog.Log(entry)
		}
	}
}

// admit runs everything between the request id and the handler (see wrap),
// storing what the key grants in r's context and recording the key in
// entry.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rt route, entry *helpdeskflow.APIRequest) error {
	if err := s.refuseKeyInQuery(r); err != nil {
		return s.unauthenticated(w, r, err)
	}
	if rt.public {
		if rt.probe {
			return nil
		}
		return s.unauthenticated(w, r, nil)
	}
	access, err := s.authenticate(w, r, entry)
	if err != nil {
		return err
	}
	*r = *r.WithContext(context.WithValue(r.Context(), accessKey, access))
	if access.Blocks(clientIPOf(r.Context())) {
		s.authFailures.WithLabelValues("blocked_ip").Inc()
		return helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "requests from %s are blocked for this workspace", clientIPOf(r.Context()))
	}
	// A batch counts as its items (a body too large is refused first).
	cost := 1
	if rt.batch {
		if cost, err = batchCost(r); err != nil {
			return err
		}
	}
	// A soft-throttled key waits on every response, its 429s included:
	// that is what slows a client that keeps hammering.
	delay, err := s.rateLimit(w, access, rt.category, cost)
	if delay > 0 {
		s.throttled.Inc()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return helpdeskflow.Errorf(helpdeskflow.EUnavailable, "the request was cancelled")
		}
	}
	if err != nil {
		return err
	}
	if rt.admin && access.Role != helpdeskflow.RoleAdmin {
		s.authFailures.WithLabelValues("forbidden").Inc()
		return helpdeskflow.Errorf(helpdeskflow.EForbidden, "%s %s needs an admin API key; this key's role is %s", rt.method, rt.path, access.Role)
	}
	agent, err := onBehalfOf(r, access)
	if err != nil {
		if e, ok := err.(*helpdeskflow.Error); ok && e.Code == helpdeskflow.EForbidden {
			s.authFailures.WithLabelValues("forbidden").Inc()
		}
		return err
	}
	if agent != "" {
		*r = *r.WithContext(context.WithValue(r.Context(), onBehalfOfKey{}, agent))
	}
	return nil
}

// keyQueryParams are query parameters where clients sometimes put keys;
// a key there is refused and never authenticates.
var keyQueryParams = []string{"api_key", "key", "token", "access_token"}

func (s *Server) refuseKeyInQuery(r *http.Request) error {
	query := r.URL.Query()
	for _, name := range keyQueryParams {
		if query.Has(name) {
			s.authFailures.WithLabelValues("key_in_wrong_place").Inc()
			return helpdeskflow.Errorf(helpdeskflow.EKeyInWrongPlace,
				"API keys are accepted only in the Authorization header (Bearer), never in the query string (%s)", name)
		}
	}
	return nil
}

// authenticate resolves the request's Bearer key. A request without a
// usable key whose JSON body carries api_key is told the key is in the
// wrong place (400) rather than missing (401). Every refusal counts
// against the client IP's unauthenticated budget, and a client IP over it
// gets 429 instead, without its key being looked up in the database or
// its body being read.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, entry *helpdeskflow.APIRequest) (helpdeskflow.Access, error) {
	key, reason, err := bearerKey(r.Header.Values("Authorization"))
	if err == nil {
		entry.KeyPrefix = helpdeskflow.APIKeyDisplayPrefix(key)
		access, ok := s.cfg.Auth.Cached(key)
		if !ok {
			// A key this process does not hold costs a database lookup,
			// which an address that keeps failing does not get.
			if err := s.unauthenticatedExhausted(w, r); err != nil {
				s.authFailures.WithLabelValues("unknown_or_revoked").Inc()
				return helpdeskflow.Access{}, err
			}
			access, err = s.cfg.Auth.Authenticate(r.Context(), key)
		}
		if err == nil {
			entry.WorkspaceID, entry.KeyID = access.WorkspaceID, access.KeyID
			return access, nil
		}
		reason = "unknown_or_revoked"
		if helpdeskflow.ErrorCode(err) != helpdeskflow.EUnauthorized {
			return helpdeskflow.Access{}, err // Postgres is down: 503, not the client's fault
		}
	}
	if limited := s.unauthenticated(w, r, err); helpdeskflow.ErrorCode(limited) == helpdeskflow.ERateLimited {
		s.authFailures.WithLabelValues(reason).Inc()
		return helpdeskflow.Access{}, limited
	}
	if reason != "unknown_or_revoked" && bodyHasAPIKey(r) {
		s.authFailures.WithLabelValues("key_in_wrong_place").Inc()
		return helpdeskflow.Access{}, helpdeskflow.Errorf(helpdeskflow.EKeyInWrongPlace,
			"API keys are accepted only in the Authorization header (Bearer), never in the body")
	}
	s.authFailures.WithLabelValues(reason).Inc()
	return helpdeskflow.Access{}, err
}

// bearerKey extracts a well-formed API key from the Authorization header
// values, or says why there is none (reason missing or malformed) with an
// EUnauthorized error a client can act on.
func bearerKey(values []string) (key, reason string, err error) {
	switch {
	case len(values) == 0 || (len(values) == 1 && strings.TrimSpace(values[0]) == ""):
		return "", "missing", helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "missing Authorization header; send Authorization: Bearer <api key>")
	case len(values) > 1:
		return "", "malformed", helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "send exactly one Authorization header")
	}
	scheme, rest, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", "malformed", helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "the Authorization header must be: Bearer <api key>")
	}
	key = strings.TrimSpace(rest)
	if !helpdeskflow.ValidAPIKeyFormat(key) {
		return "", "malformed", helpdeskflow.Errorf(helpdeskflow.EUnauthorized,
			"the API key is malformed: keys are %d characters starting with %s", helpdeskflow.APIKeyLen, helpdeskflow.APIKeyPrefix)
	}
	return key, "", nil
}

// metadata is the event metadata of a command made by this request: the
// API key as actor on channel "api", or, with X-HDF-On-Behalf-Of, the agent
// it names as actor on channel "agent" and the key in APIKeyID.
func metadata(r *http.Request) helpdeskflow.Metadata {
	p := principalOf(r.Context())
	if agent := agentOf(r.Context()); agent != "" {
		return helpdeskflow.Metadata{
			Actor:     helpdeskflow.Actor{Type: helpdeskflow.ActorAgent, ID: agent},
			Channel:   helpdeskflow.ChannelAgent,
			APIKeyID:  p.KeyID.String(),
			RequestID: requestIDOf(r.Context()),
		}
	}
	return helpdeskflow.Metadata{
		Actor:     helpdeskflow.Actor{Type: helpdeskflow.ActorAPIKey, ID: p.KeyID.String()},
		Channel:   helpdeskflow.ChannelAPI,
		RequestID: requestIDOf(r.Context()),
	}
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// handleReadyz is the API's /readyz: writeReadiness on Config.Ready.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	writeReadiness(w, r, s.cfg.Ready, s.cfg.Logger)
	return nil
}

// ReadyHandler answers as the API's /readyz does, for a process that
// serves no API (serve's relay, projector and dispatcher roles): 200
// {"ready":true,"checks":{…}} when every checker returns nil within 2 s,
// else 503 naming the failed ones "unavailable"; the errors go to logger.
// It is safe for concurrent use when the checkers are.
func ReadyHandler(ready map[string]Checker, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeReadiness(w, r, ready, logger) })
}

// writeReadiness checks every dependency with a short timeout and answers
// 503 naming the ones that failed ("unavailable"). The public port never
// shows a dependency's error text (addresses, user names, driver
// messages): it goes to the log.
func writeReadiness(w http.ResponseWriter, r *http.Request, ready map[string]Checker, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	allReady := true
	for name, check := range ready {
		if err := check(ctx); err != nil {
			logger.WarnContext(ctx, "readiness check failed", "dependency", name, "err", err)
			checks[name] = "unavailable"
			allReady = false
		} else {
			checks[name] = "ok"
		}
	}
	status := http.StatusOK
	if !allReady {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": allReady, "checks": checks})
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if s.cfg.Gatherer == nil {
		return helpdeskflow.Errorf(helpdeskflow.ENotFound, "metrics are not enabled")
	}
	promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

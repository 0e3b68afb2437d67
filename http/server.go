// Package http serves HelpDeskFlow's public HTTP API: routing, API key
// authentication, request ids, metrics, error mapping and the handlers. It
// knows the write side and the read models only through the interfaces
// declared here.
package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// Tickets is the write side and consistent read of tickets.
type Tickets interface {
	CreateTicket(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd commands.CreateTicket) (helpdeskflow.Ticket, error)
	GetTicket(ctx context.Context, workspaceID, id uuid.UUID, includeInternal bool) (helpdeskflow.Ticket, error)
}

// TicketLister lists tickets from the read model.
type TicketLister interface {
	ListTickets(ctx context.Context, workspaceID uuid.UUID, filter helpdeskflow.TicketFilter) (helpdeskflow.TicketPage, error)
}

// Authenticator resolves an API key (already checked for format) to its
// principal; EUnauthorized for unknown or revoked keys.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (helpdeskflow.Principal, error)
}

// Checker is a dependency /readyz checks; it returns nil when reachable.
type Checker func(ctx context.Context) error

// Config holds a Server's collaborators. Tickets, Lister and Auth are
// required; Logger defaults to slog.Default(), Registerer and Gatherer to
// nothing (no /metrics content).
type Config struct {
	Tickets    Tickets
	Lister     TicketLister
	Auth       Authenticator
	Ready      map[string]Checker
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// Validate reports every missing collaborator at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Tickets == nil {
		errs = append(errs, errors.New("http: Config.Tickets is required"))
	}
	if c.Lister == nil {
		errs = append(errs, errors.New("http: Config.Lister is required"))
	}
	if c.Auth == nil {
		errs = append(errs, errors.New("http: Config.Auth is required"))
	}
	return errors.Join(errs...)
}

// Server is the API's http.Handler.
type Server struct {
	cfg      Config
	router   *httprouter.Router
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewServer builds the routes. Its metrics are
// helpdeskflow_http_requests_total{method,route,status} and
// helpdeskflow_http_request_duration_seconds{method,route}.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
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
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.latency} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	s.routes()
	return s, nil
}

// route describes one API route; the tenant-isolation and auth tests walk
// this table.
type route struct {
	method, path string
	public       bool
	handle       func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error
}

func (s *Server) table() []route {
	return []route{
		{method: "GET", path: "/healthz", public: true, handle: s.handleHealthz},
		{method: "GET", path: "/readyz", public: true, handle: s.handleReadyz},
		{method: "GET", path: "/metrics", public: true, handle: s.handleMetrics},
		{method: "POST", path: "/v1/tickets", handle: s.handleTicketCreate},
		{method: "GET", path: "/v1/tickets", handle: s.handleTicketList},
		{method: "GET", path: "/v1/tickets/:id", handle: s.handleTicketGet},
	}
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
		s.cfg.Logger.ErrorContext(r.Context(), "handler panicked", "path", r.URL.Path, "panic", v)
		writeError(w, r, s.cfg.Logger, helpdeskflow.Errorf(helpdeskflow.EInternal, "internal error"))
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
)

func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func principalOf(ctx context.Context) helpdeskflow.Principal {
	p, _ := ctx.Value(principalKey).(helpdeskflow.Principal)
	return p
}

// statusRecorder remembers the status a handler wrote, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// wrap gives every route the same envelope: a request id, metrics by route
// pattern, authentication before any business logic, and error mapping.
func (s *Server) wrap(rt route) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		start := time.Now()
		requestID := "req_" + strings.ReplaceAll(uuid.NewString(), "-", "")
		w.Header().Set("X-Request-Id", requestID)
		ctx := context.WithValue(r.Context(), requestIDKey, requestID)
		rec := &statusRecorder{ResponseWriter: w}
		r = r.WithContext(ctx)

		err := s.authenticate(r, rt)
		if err == nil {
			err = rt.handle(rec, r, p)
		}
		if err != nil {
			writeError(rec, r, s.cfg.Logger, err)
		}
		status := strconv.Itoa(rec.status)
		s.requests.WithLabelValues(r.Method, rt.path, status).Inc()
		s.latency.WithLabelValues(r.Method, rt.path).Observe(time.Since(start).Seconds())
	}
}

// keyQueryParams are query parameters where clients sometimes put keys;
// a key there is refused and never authenticates.
var keyQueryParams = []string{"api_key", "key", "token", "access_token"}

// authenticate refuses keys in the wrong place, then, for non-public
// routes, resolves the Bearer key and stores the principal in r's context.
func (s *Server) authenticate(r *http.Request, rt route) error {
	query := r.URL.Query()
	for _, name := range keyQueryParams {
		if query.Has(name) {
			return helpdeskflow.Errorf(helpdeskflow.EKeyInWrongPlace,
				"API keys are accepted only in the Authorization header (Bearer), never in the query string (%s)", name)
		}
	}
	if rt.public {
		return nil
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		return helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "missing Authorization header; send Authorization: Bearer <api key>")
	}
	scheme, key, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "the Authorization header must be: Bearer <api key>")
	}
	key = strings.TrimSpace(key)
	if !helpdeskflow.ValidAPIKeyFormat(key) {
		return helpdeskflow.Errorf(helpdeskflow.EUnauthorized, "the API key is malformed")
	}
	principal, err := s.cfg.Auth.Authenticate(r.Context(), key)
	if err != nil {
		return err
	}
	*r = *r.WithContext(context.WithValue(r.Context(), principalKey, principal))
	return nil
}

// metadata is the event metadata of a command made by this request.
func metadata(r *http.Request) helpdeskflow.Metadata {
	p := principalOf(r.Context())
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

// handleReadyz checks every dependency with a short timeout and answers 503
// naming the ones that failed.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ready := true
	for name, check := range s.cfg.Ready {
		if err := check(ctx); err != nil {
			checks[name] = err.Error()
			ready = false
		} else {
			checks[name] = "ok"
		}
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
	return nil
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if s.cfg.Gatherer == nil {
		return helpdeskflow.Errorf(helpdeskflow.ENotFound, "metrics are not enabled")
	}
	promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

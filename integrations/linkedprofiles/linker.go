// Package linkedprofiles attaches customers' profiles in connected Shopify
// shops and Stripe accounts to the customers (as linked profiles that
// automation conditions can use): when a customer is created (the
// dispatcher's handlers.LinkedProfiles queues one LookupJob per connection;
// the job worker, pollers.JobWorker, runs them with Linker.RunJob, outside
// the Kafka consume loop) and on demand (Linker.Refresh, behind
// POST /v1/customers/{id}/linked-profiles/refresh). The lookups themselves
// are package profilelookup's; this package chooses the connections,
// hands out their tokens, records what was found, and marks a connection
// whose token the provider refused.
package linkedprofiles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
)

// Providers whose connections hold customer profiles.
var Providers = []string{profilelookup.ProviderShopify, profilelookup.ProviderStripe}

// Connections reads workspaces' connections (store/connections).
type Connections interface {
	ConnectionsIn(ctx context.Context, workspaceIDs []uuid.UUID) (map[uuid.UUID][]helpdeskflow.Connection, error)
	Connection(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Connection, error)
}

// Tokens hands out access tokens and records refused ones
// (integrations.Manager).
type Tokens interface {
	AccessToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error)
	TokenRevoked(ctx context.Context, workspaceID, id uuid.UUID, message string) error
}

// Lookup finds a customer by email in a shop or account
// (profilelookup.Client).
type Lookup interface {
	Lookup(ctx context.Context, a profilelookup.Account, email string) (helpdeskflow.LinkedProfile, bool, error)
}

// Customers reads and changes customers (tickets.Service).
type Customers interface {
	GetCustomer(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Customer, error)
	UpdateCustomer(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID, ifMatch *int64, cmd tickets.UpdateCustomer) (helpdeskflow.Customer, error)
}

// Config configures a Linker; all but Logger and Registerer are required.
type Config struct {
	Connections Connections
	Tokens      Tokens
	Lookup      Lookup
	Customers   Customers
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Linker looks customers up in the workspace's Shopify and Stripe
// connections. It is safe for concurrent use.
type Linker struct {
	cfg     Config
	lookups *prometheus.CounterVec
}

// New returns a Linker, registering
// helpdeskflow_linked_profile_lookups_total{provider,outcome}.
func New(cfg Config) (*Linker, error) {
	if cfg.Connections == nil || cfg.Tokens == nil || cfg.Lookup == nil || cfg.Customers == nil {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "linkedprofiles: Config needs Connections, Tokens, Lookup and Customers")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Linker{cfg: cfg, lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helpdeskflow_linked_profile_lookups_total",
		Help: "Customer lookups in connected shops and Stripe accounts, by provider and outcome (linked, not_found, or the error class)."},
		[]string{"provider", "outcome"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(l.lookups); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Outcomes of one lookup.
const (
	Linked   = "linked"
	NotFound = "not_found"
	Failed   = "error"
	// Skipped is a queued lookup (RunJob) whose customer or connection is
	// gone or no longer active.
	Skipped = "skipped"
)

// Outcome is what one connection's lookup found: Linked (with the
// profile's provider id and URL), NotFound, or Failed with the error's
// class (profilelookup's classes, "token_expired" for a connection that
// needs reconnecting, "conflict" for a profile another customer holds)
// and a message saying what to do.
type Outcome struct {
	ConnectionID uuid.UUID
	Provider     string
	Account      string
	Status       string
	ExternalID   string
	URL          string
	ErrorClass   string
	Error        string
	// RetryAfter is how long the provider asked to wait (a rate limit),
	// 0 when it did not say.
	RetryAfter time.Duration
}

// ErrNoConnections is Refresh's error (EConflict) when the workspace has
// no active Shopify or Stripe connection.
var ErrNoConnections = errors.New("no active Shopify or Stripe connection")

// metadata is the linker's: an integration working for the system.
var metadata = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorIntegration, ID: "linked-profiles"},
	Channel: helpdeskflow.ChannelIntegration}

// Refresh looks customer id's email up in every active Shopify and Stripe
// connection of the workspace and adds or updates the profiles found (an
// unchanged profile records nothing). It returns the customer afterwards
// and one outcome per connection. A provider that refuses a connection's
// token marks it token_expired. Errors: ENotFound for an unknown
// customer, EConflict (ErrNoConnections) when there is nothing to look in,
// ELimitExceeded when the profiles found would pass the customer's total.
func (l *Linker) Refresh(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Customer, []Outcome, error) {
	customer, err := l.cfg.Customers.GetCustomer(ctx, workspaceID, id)
	if err != nil {
		return customer, nil, err
	}
	conns, err := l.LookupConnections(ctx, workspaceID)
	if err != nil {
		return customer, nil, err
	}
	if len(conns) == 0 {
		return customer, nil, &helpdeskflow.Error{Code: helpdeskflow.EConflict,
			Message: "the workspace has no active Shopify or Stripe connection; connect one with POST /v1/integrations/{provider}/connect", Err: ErrNoConnections}
	}
	outcomes := make([]Outcome, 0, len(conns))
	var found []helpdeskflow.LinkedProfile
	for _, c := range conns {
		o, p := l.lookup(ctx, c, customer.Email)
		if o.Status == Linked {
			found = append(found, p)
		}
		outcomes = append(outcomes, o)
	}
	if len(found) > 0 {
		updated, err := l.cfg.Customers.UpdateCustomer(ctx, workspaceID, metadata, customer.ID, nil, tickets.UpdateCustomer{LinkedProfiles: found})
		switch {
		case err == nil:
			customer = updated
		case helpdeskflow.ErrorCode(err) == helpdeskflow.EConflict:
			// A profile belongs to another customer: report it on the
			// outcomes that found one, store nothing.
			for i := range outcomes {
				if outcomes[i].Status == Linked {
					outcomes[i].Status, outcomes[i].ErrorClass, outcomes[i].Error = Failed, "conflict", helpdeskflow.ErrorMessage(err)
				}
			}
		default:
			return customer, outcomes, err
		}
	}
	for _, o := range outcomes {
		outcome := o.Status
		if o.Status == Failed {
			outcome = o.ErrorClass
		}
		l.lookups.WithLabelValues(o.Provider, outcome).Inc()
	}
	return customer, outcomes, nil
}

// LookupConnections returns the workspace's active Shopify and Stripe
// connections: those a customer is looked up in.
func (l *Linker) LookupConnections(ctx context.Context, workspaceID uuid.UUID) ([]helpdeskflow.Connection, error) {
	all, err := l.LookupConnectionsIn(ctx, []uuid.UUID{workspaceID})
	return all[workspaceID], err
}

// LookupConnectionsIn returns LookupConnections of each of workspaceIDs
// that has any, read in one query.
func (l *Linker) LookupConnectionsIn(ctx context.Context, workspaceIDs []uuid.UUID) (map[uuid.UUID][]helpdeskflow.Connection, error) {
	all, err := l.cfg.Connections.ConnectionsIn(ctx, workspaceIDs)
	if err != nil {
		return nil, err
	}
	for ws, conns := range all {
		conns = slices.DeleteFunc(conns, func(c helpdeskflow.Connection) bool {
			return c.Status != helpdeskflow.ConnectionActive || !slices.Contains(Providers, c.Provider)
		})
		if len(conns) == 0 {
			delete(all, ws)
		} else {
			all[ws] = conns
		}
	}
	return all, nil
}

// lookup looks email up in connection c.
func (l *Linker) lookup(ctx context.Context, c helpdeskflow.Connection, email string) (Outcome, helpdeskflow.LinkedProfile) {
	o := Outcome{ConnectionID: c.ID, Provider: c.Provider, Account: c.Account}
	fail := func(class, msg string) (Outcome, helpdeskflow.LinkedProfile) {
		o.Status, o.ErrorClass, o.Error = Failed, class, msg
		return o, helpdeskflow.LinkedProfile{}
	}
	token, err := l.cfg.Tokens.AccessToken(ctx, c.WorkspaceID, c.ID)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.EConflict {
		return fail("token_expired", helpdeskflow.ErrorMessage(err))
	}
	if err != nil {
		return fail(profilelookup.ClassTemporary, helpdeskflow.ErrorMessage(err))
	}
	p, ok, err := l.cfg.Lookup.Lookup(ctx, profilelookup.Account{Provider: c.Provider, Name: c.Account, AccessToken: token}, email)
	switch class := profilelookup.Classify(err); {
	case err == nil && ok:
		o.Status, o.ExternalID, o.URL = Linked, p.ExternalID, p.URL
		return o, p
	case err == nil:
		o.Status = NotFound
		return o, p
	case class == profilelookup.ClassUnauthorized:
		msg := "the provider refused the connection's access token (" + err.Error() + "); reconnect it"
		if rerr := l.cfg.Tokens.TokenRevoked(ctx, c.WorkspaceID, c.ID, msg); rerr != nil {
			l.cfg.Logger.Warn("linked profiles: marking a refused connection failed", "connection", c.ID, "error", rerr)
		}
		return fail("token_expired", msg)
	default:
		var le *profilelookup.LookupError
		if errors.As(err, &le) {
			o.RetryAfter = le.RetryAfter
		}
		return fail(class, err.Error())
	}
}

// LookupJob is the payload of a helpdeskflow.JobProfileLookup: the
// customer to look up in the job's connection. handlers.LinkedProfiles
// queues it (one per connection LookupConnections returns); RunJob runs
// it.
type LookupJob struct {
	CustomerID uuid.UUID `json:"customer_id"`
}

// RunJob looks a queued customer up in the job's connection (a
// pollers.JobRunner) and adds the profile found. Its outcomes are
// "linked", "not_found" and "skipped" (the customer or the connection is
// gone, or the connection is no longer active); a failure is retried when
// it is temporary (rate limits after their Retry-After, 5xx, network
// errors, timeouts) and otherwise final: a refused token marks the
// connection token_expired (class "token_expired"), a profile another
// customer holds is "conflict", a customer at its linked-profile total
// (tickets.MaxCustomerLinkedProfiles) "limit_exceeded".
func (l *Linker) RunJob(ctx context.Context, j helpdeskflow.IntegrationJob) helpdeskflow.JobResult {
	var job LookupJob
	if err := json.Unmarshal(j.Payload, &job); err != nil {
		return helpdeskflow.JobResult{Err: fmt.Errorf("lookup job payload: %w", err), ErrorClass: "bad_job"}
	}
	failed := func(err error, class string, retry bool) helpdeskflow.JobResult {
		return helpdeskflow.JobResult{Err: err, ErrorClass: class, Retry: retry}
	}
	customer, err := l.cfg.Customers.GetCustomer(ctx, j.WorkspaceID, job.CustomerID)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
		return helpdeskflow.JobResult{Outcome: Skipped}
	}
	if err != nil {
		return failed(err, profilelookup.ClassTemporary, true)
	}
	c, err := l.cfg.Connections.Connection(ctx, j.WorkspaceID, j.ConnectionID)
	if helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound || err == nil && (c.Status != helpdeskflow.ConnectionActive || !slices.Contains(Providers, c.Provider)) {
		return helpdeskflow.JobResult{Outcome: Skipped}
	}
	if err != nil {
		return failed(err, profilelookup.ClassTemporary, true)
	}
	o, p := l.lookup(ctx, c, customer.Email)
	if o.Status == Linked {
		// The write must not fail because the lookup used up the job's
		// deadline.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, err := l.cfg.Customers.UpdateCustomer(wctx, j.WorkspaceID, metadata, customer.ID, nil, tickets.UpdateCustomer{LinkedProfiles: []helpdeskflow.LinkedProfile{p}})
		cancel()
		switch code := helpdeskflow.ErrorCode(err); {
		case code == helpdeskflow.EConflict:
			o.Status, o.ErrorClass, o.Error = Failed, "conflict", helpdeskflow.ErrorMessage(err)
		case code == helpdeskflow.ELimitExceeded:
			// The customer has all the linked profiles it may have:
			// trying again changes nothing.
			o.Status, o.ErrorClass, o.Error = Failed, "limit_exceeded", helpdeskflow.ErrorMessage(err)
		case err != nil:
			return failed(err, profilelookup.ClassTemporary, true)
		}
	}
	outcome := o.Status
	if o.Status == Failed {
		outcome = o.ErrorClass
	}
	l.lookups.WithLabelValues(o.Provider, outcome).Inc()
	if o.Status != Failed {
		return helpdeskflow.JobResult{Outcome: o.Status}
	}
	if ctx.Err() != context.Canceled { // not when the worker is stopping
		l.cfg.Logger.Warn("linked profiles: a lookup failed", "customer", customer.ID, "provider", o.Provider,
			"connection", o.ConnectionID, "class", o.ErrorClass, "error", o.Error, "attempt", j.Attempt)
	}
	r := failed(errors.New(o.Error), o.ErrorClass, temporary(o))
	r.RetryAfter = o.RetryAfter
	return r
}

// temporary reports whether an outcome may succeed if tried again soon.
func temporary(o Outcome) bool {
	return o.Status == Failed && (o.ErrorClass == profilelookup.ClassTemporary || o.ErrorClass == profilelookup.ClassRateLimited)
}

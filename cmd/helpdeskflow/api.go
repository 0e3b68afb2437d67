package main

import (
	"context"
	"log/slog"
	nethttp "net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	commandsoutbound "github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/http"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/kafka/recordlog"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
	"github.com/helpdeskflow/helpdeskflow/store/ratelimits"
)

// apiRole is the public HTTP API: its handler (which serve's HTTP server
// serves), the access cache it authenticates with, the request log it
// writes to Kafka and its own ClickHouse connections for the read models.
type apiRole struct {
	handler     nethttp.Handler
	accessCache *access.Cache
	requestLog  *recordlog.Logger
	readCH      driver.Conn
	limiter     *ratelimit.Limiter
	logger      *slog.Logger
}

// newAPIRole builds the API on the process's rooms, command areas and
// integrations; on an error it closes what it opened.
func newAPIRole(ctx context.Context, p *process) (_ *apiRole, err error) {
	r := &apiRole{logger: p.logger, accessCache: access.NewCache(p.rooms.access, access.CacheConfig{Logger: p.logger})}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.requestLog, err = recordlog.New(recordlog.Config{Brokers: p.brokers, Logger: p.logger, Registerer: p.reg,
		KafkaOptions: []kafka.Option{kafka.WithLogger(p.logger)}}); err != nil {
		return nil, err
	}
	// The API's read-model queries get their own ClickHouse connections:
	// slow list queries must never leave the projectors waiting for a
	// connection to insert with.
	if r.readCH, err = projections.OpenClickHouse(ctx, p.cfg.ClickHouseAddr, p.cfg.ClickHouseDatabase); err != nil {
		return nil, err
	}
	if r.handler, err = apiHandler(p, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Run keeps the access cache fresh and exchanges the rate limit counts with
// the other API processes until ctx ends; serve's HTTP server serves the
// handler.
func (r *apiRole) Run(ctx context.Context) error {
	return runAll(ctx, r.accessCache.Run, r.limiter.Run)
}

// Close closes the read-model connections, then the request log, whose
// buffered records get up to 10 s to reach Kafka. Call it after the HTTP
// server has shut down.
func (r *apiRole) Close() {
	if r.readCH != nil {
		r.readCH.Close()
	}
	if r.requestLog != nil {
		closeRecordLog(r.logger, r.requestLog)
	}
}

// closeRecordLog closes l, giving its buffered records up to 10 s to reach
// Kafka, and warns about those it dropped.
func closeRecordLog(logger *slog.Logger, l *recordlog.Logger) {
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(closeCtx); err != nil {
		logger.Warn("records dropped at shutdown", "err", err)
	}
}

// apiHandler is the public API.
func apiHandler(p *process, r *apiRole) (nethttp.Handler, error) {
	// Every API process shares its keys' counts through Postgres, so a
	// key's limit holds across them (see the README's rate limit section);
	// the client IPs' budgets without a key stay per process, so a flood
	// from many addresses does not grow every exchange.
	limiter, err := ratelimit.New(ratelimit.Config{Shared: ratelimits.New(p.rooms.db), Unshared: []string{http.RateUnauthenticated},
		Logger: p.logger, Registerer: p.reg})
	if err != nil {
		return nil, err
	}
	r.limiter = limiter
	proxies, _ := p.cfg.trustedProxies() // validated in parseConfig
	var connections http.Connections
	var linker http.LinkedProfiles
	if p.connections != nil {
		connections, linker = p.connections, p.linker
	}
	rooms, service := p.rooms, p.services
	sealer, err := positionSealer(p)
	if err != nil {
		return nil, err
	}
	return http.NewServer(http.Config{
		Tickets:          service.tickets,
		Customers:        service.tickets,
		CustomerLister:   projections.NewCustomerReader(r.readCH),
		Lister:           projections.NewTicketReader(r.readCH),
		Events:           rooms.events,
		Auth:             r.accessCache,
		Admin:            service.access,
		AdminReader:      rooms.access,
		Automations:      service.rules,
		Simulator:        service.tickets,
		SLAPolicies:      service.rules,
		Webhooks:         service.outbound,
		WebhookReader:    webhookRooms{rooms.outbound, rooms.queues},
		Slack:            service.outbound,
		SlackReader:      rooms.outbound,
		Connections:      connections,
		ConnectionReader: connectionRooms{rooms.connections, rooms.queues},
		LinkedProfiles:   linker,
		WebhookReplays:   webhookReplays{commandsoutbound.NewReplays(replayRooms{rooms.events, rooms.outbound, rooms.queues}, nil), rooms.queues},
		Limiter:          limiter,
		RequestLog:       r.requestLog,
		Idempotency:      idempotency.New(rooms.db),
		PositionSealer:   sealer,
		ReadPositions:    projections.NewPositionWatcher(projections.NewPositionReader(r.readCH), projections.PositionWatcherConfig{}),
		TrustedProxies:   proxies,
		Ready: map[string]http.Checker{
			"postgres":   rooms.db.Ping,
			"kafka":      p.producer.Ping,
			"clickhouse": r.readCH.Ping,
		},
		Logger:     p.logger,
		Registerer: p.reg,
		Gatherer:   p.publicMetrics(),
	})
}

// positionSealer is the keyring X-HDF-Position tokens are sealed with: the
// process's (HDF_SECRET_KEYS), so every API process opens every other's
// tokens; without one, a key of this process alone, so a token holds only
// on the process that gave it, until it restarts (logged).
func positionSealer(p *process) (*secretbox.Keyring, error) {
	if p.keyring != nil {
		return p.keyring, nil
	}
	spec, err := secretbox.NewKey("positions")
	if err != nil {
		return nil, err
	}
	p.logger.Warn("no secret keys (HDF_SECRET_KEYS): X-HDF-Position tokens hold only on this process until it restarts")
	return secretbox.ParseKeyring(spec)
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/slack"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/http"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// topicPartitions is how many partitions serve creates the topics with when
// they do not exist yet.
const topicPartitions = 8

// process is what the roles of one `serve` share: the configuration, the
// logger and the metrics registry, the Postgres database and its rooms,
// the migrated ClickHouse connection (when api or projector runs), the
// Kafka producer, the outbound address policy, the Slack client, the
// keyring, the command areas, and the integrations manager and linker
// (nil without a keyring). Close closes what it opened.
type process struct {
	cfg     config
	logger  *slog.Logger
	brokers []string
	roles   map[string]bool
	reg     *registry

	db       *pg.DB
	rooms    stores
	ch       driver.Conn // nil unless api or projector runs
	producer *kafka.Client

	policy      egress.Policy
	slack       *slack.Client
	keyring     *secretbox.Keyring // nil without HDF_SECRET_KEYS
	services    commandServices
	connections *integrations.Manager  // nil without keyring
	linker      *linkedprofiles.Linker // nil without keyring
}

// newProcess connects to Postgres (migrating it), ClickHouse (when api or
// projector runs; migrating it) and Kafka (creating the topics), and
// builds the command areas and, with HDF_SECRET_KEYS, the integrations.
// On an error it closes what it opened.
func newProcess(ctx context.Context, cfg config, logger *slog.Logger, brokers []string) (_ *process, err error) {
	p := &process{cfg: cfg, logger: logger, brokers: brokers, roles: map[string]bool{}, reg: newRegistry()}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	for _, r := range cfg.roles() {
		p.roles[r] = true
	}
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if p.db, err = pg.Connect(ctx, cfg.PostgresURL, int32(cfg.PostgresMaxConns)); err != nil {
		return nil, err
	}
	if err := pg.Migrate(ctx, p.db); err != nil {
		return nil, err
	}
	if cfg.GroupCommitters > 0 {
		if err := p.db.EnableGroupCommit(pg.GroupConfig{Committers: cfg.GroupCommitters}, p.reg); err != nil {
			return nil, err
		}
	}
	if p.rooms, err = newStores(p.db, p.reg); err != nil {
		return nil, err
	}
	if p.roles["api"] || p.roles["projector"] {
		if p.ch, err = projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase); err != nil {
			return nil, err
		}
		if err := projections.Migrate(ctx, p.ch); err != nil {
			return nil, err
		}
	}
	if p.producer, err = kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, Logger: logger, Linger: 2 * time.Millisecond}); err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if err := kafka.EnsureTopics(ctx, p.producer, topicPartitions, kafka.TopicEvents, kafka.TopicAPIRequests, kafka.TopicServiceFacts); err != nil {
		return nil, err
	}

	commandMetrics, err := rules.NewMetrics(p.reg)
	if err != nil {
		return nil, err
	}
	// Slack's and Gmail's API hosts are the operator's configuration, not
	// a user's; every host a user can name goes through this policy.
	p.policy = cfg.outboundPolicy()
	p.slack = slack.New(cfg.SlackAPIURL, nil)
	outboundOpts := []outbound.Option{outbound.WithSlack(p.slack)}
	if cfg.SecretKeys != "" {
		if p.keyring, err = secretbox.ParseKeyring(cfg.SecretKeys); err != nil {
			return nil, fmt.Errorf("HDF_SECRET_KEYS: %w", err)
		}
		outboundOpts = append(outboundOpts, outbound.WithSecrets(p.keyring, p.policy.AllowLoopback))
	} else {
		logger.Warn("HDF_SECRET_KEYS is not set: webhooks cannot be created or delivered")
	}
	ticketOpts := []tickets.Option{tickets.WithMetrics(commandMetrics)}
	if cfg.ReadCacheMB > 0 {
		ticketOpts = append(ticketOpts, tickets.WithReadCache(int64(cfg.ReadCacheMB)<<20))
	}
	p.services = newCommandServices(p.rooms.events, ticketOpts, outboundOpts)
	for _, c := range p.services.tickets.ReadCacheCollectors() {
		if err := p.reg.Register(c); err != nil {
			return nil, fmt.Errorf("read cache metrics: %w", err)
		}
	}
	if p.keyring != nil {
		if p.connections, p.linker, err = integrationsOf(cfg, p.policy, p.keyring, p.rooms.connections, p.services.tickets, logger, p.reg); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// publicMetrics is what the public HTTP port serves on /metrics: the
// registry, or nil with a metrics address (then /metrics is served there
// only: the public port must not tell the internet about the system's
// state).
func (p *process) publicMetrics() prometheus.Gatherer {
	if p.cfg.MetricsAddr != "" {
		return nil
	}
	return p.reg
}

// readyChecks are the dependencies a process without the API reports on
// /readyz: Postgres and Kafka, and ClickHouse when it has a connection
// (the projector runs).
func (p *process) readyChecks() map[string]http.Checker {
	checks := map[string]http.Checker{"postgres": p.db.Ping, "kafka": p.producer.Ping}
	if p.ch != nil {
		checks["clickhouse"] = p.ch.Ping
	}
	return checks
}

// Close closes the Kafka producer, the ClickHouse connection and the
// Postgres pool, in that order; call it after every role has stopped.
func (p *process) Close() {
	if p.producer != nil {
		p.producer.Close()
	}
	if p.ch != nil {
		p.ch.Close()
	}
	if p.db != nil {
		p.db.Close()
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/http/pprof"
	"net/netip"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/slack"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
	"github.com/helpdeskflow/helpdeskflow/commands/rules"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
	"github.com/helpdeskflow/helpdeskflow/dispatch/handlers"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/http"
	"github.com/helpdeskflow/helpdeskflow/http/ratelimit"
	"github.com/helpdeskflow/helpdeskflow/http/requestlog"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/relay"
	"github.com/helpdeskflow/helpdeskflow/store/access"
	"github.com/helpdeskflow/helpdeskflow/store/idempotency"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// topicPartitions is how many partitions serve creates the topics with when
// they do not exist yet.
const topicPartitions = 8

// serve runs cfg's roles until ctx is cancelled, then shuts them down in
// order: the HTTP server stops taking requests, the relay, projector and
// dispatcher finish their batch and commit, then connections close. When
// ready is not nil it is called with the HTTP address once everything runs.
func serve(ctx context.Context, cfg config, logger *slog.Logger, brokers []string, ready func(addr string)) error {
	roles := map[string]bool{}
	for _, r := range cfg.roles() {
		roles[r] = true
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	db, err := pg.Connect(ctx, cfg.PostgresURL, int32(cfg.PostgresMaxConns))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := pg.Migrate(ctx, db); err != nil {
		return err
	}
	rooms, err := newStores(db, reg)
	if err != nil {
		return err
	}
	store := rooms.events
	var ch driver.Conn
	if roles["api"] || roles["projector"] {
		if ch, err = projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase); err != nil {
			return err
		}
		defer ch.Close()
		if err := projections.Migrate(ctx, ch); err != nil {
			return err
		}
	}
	producer, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, Logger: logger, Linger: 2 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer producer.Close()
	if err := kafka.EnsureTopics(ctx, producer, topicPartitions, kafka.TopicEvents, kafka.TopicAPIRequests); err != nil {
		return err
	}

	commandMetrics, err := rules.NewMetrics(reg)
	if err != nil {
		return err
	}
	// Slack's and Gmail's API hosts are the operator's configuration, not
	// a user's; every host a user can name goes through this policy.
	policy := cfg.outboundPolicy()
	slackClient := slack.New(cfg.SlackAPIURL, nil)
	outboundOpts := []outbound.Option{outbound.WithSlack(slackClient)}
	var keyring *secretbox.Keyring
	if cfg.SecretKeys != "" {
		if keyring, err = secretbox.ParseKeyring(cfg.SecretKeys); err != nil {
			return fmt.Errorf("HDF_SECRET_KEYS: %w", err)
		}
		outboundOpts = append(outboundOpts, outbound.WithSecrets(keyring, policy.AllowLoopback))
	} else {
		logger.Warn("HDF_SECRET_KEYS is not set: webhooks cannot be created or delivered")
	}
	service := newCommandServices(store, []tickets.Option{tickets.WithMetrics(commandMetrics)}, outboundOpts)
	var connections *integrations.Manager
	var linker *linkedprofiles.Linker
	if keyring != nil {
		if connections, linker, err = integrationsOf(cfg, policy, keyring, rooms.connections, service.tickets, logger, reg); err != nil {
			return err
		}
	}

	var workers []func(context.Context) error
	if roles["relay"] {
		relay, err := relay.New(store, producer, relay.Config{Logger: logger, Registerer: reg})
		if err != nil {
			return err
		}
		workers = append(workers, relay.Run)
	}
	if roles["projector"] {
		projector, err := projections.NewProjector(projections.Config{
			Brokers: brokers, ClickHouse: ch, Events: store, Logger: logger, Registerer: reg,
		})
		if err != nil {
			return err
		}
		requests, err := projections.NewRequestLogProjector(projections.RequestLogConfig{
			Brokers: brokers, ClickHouse: ch, Logger: logger, Registerer: reg,
		})
		if err != nil {
			return err
		}
		workers = append(workers, projector.Run, requests.Run)
	}
	if roles["dispatcher"] {
		var outboundHandlers *handlers.Outbound
		if keyring != nil {
			base, factor, _ := cfg.webhookBackoff() // validated with the config
			deliveries, err := pollers.NewDeliveryWorker(pollers.DeliveryWorkerConfig{
				Store: webhookRooms{rooms.outbound, rooms.queues}, Secrets: keyring, BackoffBase: base, BackoffFactor: factor, Logger: logger, Registerer: reg,
				Sender: webhook.NewSender(webhook.Config{AllowLoopback: policy.AllowLoopback}),
			})
			if err != nil {
				return err
			}
			notifier, err := pollers.NewSlackNotifier(pollers.SlackNotifierConfig{Store: rooms.outbound, Poster: slackClient, Secrets: keyring,
				Auth: service.outbound, Tickets: service.tickets, Logger: logger, Registerer: reg})
			if err != nil {
				return err
			}
			// Slack and the Shopify/Stripe lookups run in the job worker,
			// never in the dispatcher's consume loop.
			jobs, err := pollers.NewJobWorker(pollers.JobWorkerConfig{Store: rooms.queues, Logger: logger, Registerer: reg,
				Runners: map[string]pollers.JobRunner{helpdeskflow.JobSlackNotification: notifier, helpdeskflow.JobProfileLookup: linker}})
			if err != nil {
				return err
			}
			mail, err := mailWorkers(cfg, mailRooms{rooms.connections, rooms.mail}, service.tickets, connections, logger, reg)
			if err != nil {
				return err
			}
			outboundHandlers = &handlers.Outbound{Webhooks: webhookRooms{rooms.outbound, rooms.queues}, Slack: rooms.outbound, Jobs: rooms.queues, Linker: linker}
			workers = append(workers, deliveries.Run, jobs.Run)
			workers = append(workers, mail...)
		}
		dispatcher, err := dispatch.New(dispatch.Config{
			Brokers: brokers, Pool: db, Events: store, Logger: logger, Registerer: reg,
			Handlers: handlers.All(handlers.Config{Logger: logger, Outbound: outboundHandlers}),
		})
		if err != nil {
			return err
		}
		slaTimers, err := pollers.NewSLAWorker(pollers.SLAWorkerConfig{Timers: rooms.queues, Checker: service.tickets, Logger: logger, Registerer: reg})
		if err != nil {
			return err
		}
		workers = append(workers, dispatcher.Run, slaTimers.Run)
	}

	// With a metrics address, /metrics is served there only: the public
	// port must not tell the internet about the system's state.
	var publicMetrics prometheus.Gatherer = reg
	if cfg.MetricsAddr != "" {
		publicMetrics = nil
	}
	var handler nethttp.Handler
	if roles["api"] {
		accessCache := access.NewCache(rooms.access, access.CacheConfig{Logger: logger})
		workers = append(workers, accessCache.Run)
		requestLog, err := requestlog.New(requestlog.Config{Brokers: brokers, Logger: logger, Registerer: reg,
			KafkaOptions: []kafka.Option{kafka.WithLogger(logger)}})
		if err != nil {
			return err
		}
		// Closed when serve returns, after the HTTP server has shut down:
		// what is still buffered gets up to 10 s to reach Kafka.
		defer func() {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := requestLog.Close(closeCtx); err != nil {
				logger.Warn("request log: records dropped at shutdown", "err", err)
			}
		}()
		// The API's read-model queries get their own ClickHouse
		// connections: slow list queries must never leave the projectors
		// waiting for a connection to insert with.
		readCH, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
		if err != nil {
			return err
		}
		defer readCH.Close()
		proxies, _ := cfg.trustedProxies() // validated in parseConfig
		var apiConnections http.Connections
		var apiLinker http.LinkedProfiles
		if connections != nil {
			apiConnections, apiLinker = connections, linker
		}
		if handler, err = apiHandler(rooms, service, apiConnections, apiLinker, accessCache, requestLog, readCH, producer, proxies, logger, reg, publicMetrics); err != nil {
			return err
		}
	} else {
		handler = healthHandler(publicMetrics)
	}
	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	server := &nethttp.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}

	if cfg.DebugAddr != "" {
		if err := serveDebug(cfg.DebugAddr, logger); err != nil {
			return err
		}
	}
	var metricsServer *nethttp.Server
	if cfg.MetricsAddr != "" {
		metricsListener, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			listener.Close()
			return fmt.Errorf("listen on metrics address %s: %w", cfg.MetricsAddr, err)
		}
		mux := nethttp.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		metricsServer = &nethttp.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
		go metricsServer.Serve(metricsListener) //nolint:errcheck // ErrServerClosed at shutdown; a scrape failure is Prometheus's to see
		logger.Info("metrics", "addr", "http://"+metricsListener.Addr().String()+"/metrics")
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(workers)+1)
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w(runCtx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
			errs <- err
			cancel()
		}
	}()
	logger.Info("helpdeskflow running", "roles", cfg.Roles, "http", listener.Addr().String())
	if ready != nil {
		ready(listener.Addr().String())
	}

	<-runCtx.Done()
	logger.Info("shutting down")
	shutdownCtx, cancelShutdown := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancelShutdown()
	server.Shutdown(shutdownCtx) //nolint:errcheck // best effort: the process is ending
	if metricsServer != nil {
		metricsServer.Shutdown(shutdownCtx) //nolint:errcheck // best effort: the process is ending
	}
	cancel()
	wg.Wait()
	close(errs)
	var runErrs []error
	for err := range errs {
		runErrs = append(runErrs, err)
	}
	return errors.Join(runErrs...)
}

// healthHandler is what roles other than api serve: /healthz, and
// /metrics when metrics is not nil (no --metrics-addr).
func healthHandler(metrics prometheus.Gatherer) nethttp.Handler {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w nethttp.ResponseWriter, _ *nethttp.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	if metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	}
	return mux
}

// apiHandler is the public API.
func apiHandler(rooms stores, service commandServices, connections http.Connections, linker http.LinkedProfiles, accessCache *access.Cache, requestLog http.RequestLog, ch driver.Conn, producer *kafka.Client,
	proxies []netip.Prefix, logger *slog.Logger, reg *prometheus.Registry, metrics prometheus.Gatherer) (nethttp.Handler, error) {
	limiter, err := ratelimit.New(ratelimit.Config{Registerer: reg})
	if err != nil {
		return nil, err
	}
	return http.NewServer(http.Config{
		Tickets:          service.tickets,
		Customers:        service.tickets,
		CustomerLister:   projections.NewCustomerReader(ch),
		Lister:           projections.NewTicketReader(ch),
		Events:           rooms.events,
		Auth:             accessCache,
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
		Limiter:          limiter,
		RequestLog:       requestLog,
		Idempotency:      idempotency.New(rooms.db),
		TrustedProxies:   proxies,
		Ready: map[string]http.Checker{
			"postgres":   rooms.db.Ping,
			"kafka":      producer.Ping,
			"clickhouse": ch.Ping,
		},
		Logger:     logger,
		Registerer: reg,
		Gatherer:   metrics,
	})
}

// serveDebug serves pprof's profiles on addr for as long as the process
// lives; it is off unless HDF_DEBUG_ADDR is set.
func serveDebug(addr string, logger *slog.Logger) error {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on debug address %s: %w", addr, err)
	}
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("pprof profiles", "addr", "http://"+listener.Addr().String()+"/debug/pprof/")
	go nethttp.Serve(listener, mux) //nolint:errcheck // lives as long as the process
	return nil
}

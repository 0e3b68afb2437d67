package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/helpdeskflow/helpdeskflow/http"
)

// role is one of serve's roles (api, relay, projector, dispatcher) built
// on the process's shared parts: Run works until ctx ends and then
// finishes what it has in hand (a batch, a run); Close releases what the
// role itself opened, after Run has returned.
type role interface {
	Run(ctx context.Context) error
	Close()
}

// serve runs cfg's roles until ctx is cancelled, then shuts them down in
// order: the HTTP server stops taking requests, the relay, projector and
// dispatcher finish their batch and commit, then connections close. When
// ready is not nil it is called with the HTTP address once everything runs.
func serve(ctx context.Context, cfg config, logger *slog.Logger, brokers []string, ready func(addr string)) error {
	p, err := newProcess(ctx, cfg, logger, brokers)
	if err != nil {
		return err
	}
	defer p.Close()
	roles, handler, err := newRoles(ctx, p)
	defer func() {
		for i := len(roles) - 1; i >= 0; i-- {
			roles[i].Close()
		}
	}()
	if err != nil {
		return err
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
	metricsServer, err := serveMetrics(cfg.MetricsAddr, p.reg, logger)
	if err != nil {
		listener.Close()
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runs := make([]func(context.Context) error, len(roles))
	for i, r := range roles {
		// A failed role stops the process, as does a failed HTTP server.
		runs[i] = func(ctx context.Context) error {
			err := r.Run(ctx)
			if err != nil {
				cancel()
			}
			return err
		}
	}
	go followReadCache(runCtx, func() int64 { return p.services.tickets.ReadCacheStats().Bytes }, time.Second)
	rolesDone := make(chan error, 1)
	go func() { rolesDone <- runAll(runCtx, runs...) }()
	serverErr := make(chan error, 1)
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
			serverErr <- err
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
	err = <-rolesDone
	select {
	case serr := <-serverErr:
		err = errors.Join(err, serr)
	default:
	}
	return err
}

// newRoles builds the roles p.roles names, in the order relay, projector,
// dispatcher, api, and returns them with what the HTTP port serves: the
// API, or for a process without it /healthz, /readyz (and /metrics). On an error
// it returns the roles built so far, for the caller to close.
func newRoles(ctx context.Context, p *process) ([]role, nethttp.Handler, error) {
	handler := healthHandler(p.publicMetrics(), p.readyChecks(), p.logger)
	var roles []role
	for _, chosen := range []struct {
		name  string
		build func() (role, error)
	}{
		{"relay", func() (role, error) { return newRelayRole(p) }},
		{"projector", func() (role, error) { return newProjectorRole(p) }},
		{"dispatcher", func() (role, error) { return newDispatcherRole(p) }},
		{"api", func() (role, error) {
			api, err := newAPIRole(ctx, p)
			if err != nil {
				return nil, err
			}
			handler = api.handler
			return api, nil
		}},
	} {
		if !p.roles[chosen.name] {
			continue
		}
		r, err := chosen.build()
		if err != nil {
			return roles, nil, err
		}
		roles = append(roles, r)
	}
	return roles, handler, nil
}

// runAll runs fns concurrently until ctx ends or one of them fails, which
// cancels the others; it waits for all of them and returns their errors
// joined.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(fns))
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// serveMetrics serves /metrics from reg on addr, when addr is set, until
// the returned server is shut down (nil without addr).
func serveMetrics(addr string, reg prometheus.Gatherer, logger *slog.Logger) (*nethttp.Server, error) {
	if addr == "" {
		return nil, nil
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on metrics address %s: %w", addr, err)
	}
	mux := nethttp.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	server := &nethttp.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go server.Serve(listener) //nolint:errcheck // ErrServerClosed at shutdown; a scrape failure is Prometheus's to see
	logger.Info("metrics", "addr", "http://"+listener.Addr().String()+"/metrics")
	return server, nil
}

// healthHandler is what roles other than api serve: /healthz, /readyz
// with the API's answer on ready's checks, and /metrics when metrics is
// not nil (no --metrics-addr).
func healthHandler(metrics prometheus.Gatherer, ready map[string]http.Checker, logger *slog.Logger) nethttp.Handler {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w nethttp.ResponseWriter, _ *nethttp.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.Handle("GET /readyz", http.ReadyHandler(ready, logger))
	if metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	}
	return mux
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

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/helpdeskflow/helpdeskflow/relay"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// relayRole publishes the events the event store commits to Kafka
// (relay.Relay), in commit order, and keeps the write path's tables'
// statistics up to date while they are young (pg.KeepStatistics).
type relayRole struct {
	relay  *relay.Relay
	db     *pg.DB
	logger *slog.Logger
}

// newRelayRole builds the relay on the process's event store and producer.
func newRelayRole(p *process) (*relayRole, error) {
	r, err := relay.New(p.rooms.events, p.producer, relay.Config{Logger: p.logger, Registerer: p.reg})
	if err != nil {
		return nil, err
	}
	return &relayRole{relay: r, db: p.db, logger: p.logger}, nil
}

// Run publishes until ctx ends; then the relay finishes its batch.
func (r *relayRole) Run(ctx context.Context) error {
	return runAll(ctx, r.relay.Run, func(ctx context.Context) error {
		return pg.KeepStatistics(ctx, r.db, pg.HotTables, time.Second, r.logger)
	})
}

// Close does nothing: the relay holds nothing of its own.
func (r *relayRole) Close() {}

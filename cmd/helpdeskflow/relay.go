package main

import (
	"context"

	"github.com/helpdeskflow/helpdeskflow/relay"
)

// relayRole publishes the events the event store commits to Kafka
// (relay.Relay), in commit order.
type relayRole struct {
	relay *relay.Relay
}

// newRelayRole builds the relay on the process's event store and producer.
func newRelayRole(p *process) (*relayRole, error) {
	r, err := relay.New(p.rooms.events, p.producer, relay.Config{Logger: p.logger, Registerer: p.reg})
	if err != nil {
		return nil, err
	}
	return &relayRole{relay: r}, nil
}

// Run publishes until ctx ends; then the relay finishes its batch.
func (r *relayRole) Run(ctx context.Context) error { return r.relay.Run(ctx) }

// Close does nothing: the relay holds nothing of its own.
func (r *relayRole) Close() {}

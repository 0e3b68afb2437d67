package main

import (
	"context"

	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// projectorRole builds the ClickHouse read models from the events topic
// (projections.Projector), the API request log from the requests topic
// (projections.RequestLogProjector) and the service facts from theirs
// (projections.FactsProjector).
type projectorRole struct {
	events   *projections.Projector
	requests *projections.RequestLogProjector
	facts    *projections.FactsProjector
}

// newProjectorRole builds the three projectors on the process's ClickHouse
// connection, each a static member of its group when HDF_INSTANCE_ID is
// set (instance ids are per group, so both use it).
func newProjectorRole(p *process) (*projectorRole, error) {
	membership := kafka.Membership{InstanceID: p.cfg.InstanceID}
	events, err := projections.NewProjector(projections.Config{
		Brokers: p.brokers, ClickHouse: p.ch, Events: p.rooms.events, Logger: p.logger, Registerer: p.reg,
		Membership: membership,
	})
	if err != nil {
		return nil, err
	}
	requests, err := projections.NewRequestLogProjector(projections.RequestLogConfig{
		Brokers: p.brokers, ClickHouse: p.ch, Logger: p.logger, Registerer: p.reg, Membership: membership,
	})
	if err != nil {
		return nil, err
	}
	facts, err := projections.NewFactsProjector(projections.FactsConfig{
		Brokers: p.brokers, ClickHouse: p.ch, Logger: p.logger, Registerer: p.reg, Membership: membership,
	})
	if err != nil {
		return nil, err
	}
	return &projectorRole{events: events, requests: requests, facts: facts}, nil
}

// Run projects until ctx ends; then each projector flushes and commits
// its batch.
func (r *projectorRole) Run(ctx context.Context) error {
	return runAll(ctx, r.events.Run, r.requests.Run, r.facts.Run)
}

// Close does nothing: the ClickHouse connection is the process's.
func (r *projectorRole) Close() {}

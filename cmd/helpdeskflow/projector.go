package main

import (
	"context"

	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// projectorRole builds the ClickHouse read models from the events topic
// (projections.Projector) and the API request log from the requests topic
// (projections.RequestLogProjector).
type projectorRole struct {
	events   *projections.Projector
	requests *projections.RequestLogProjector
}

// newProjectorRole builds both projectors on the process's ClickHouse
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
	return &projectorRole{events: events, requests: requests}, nil
}

// Run projects until ctx ends; then each projector flushes and commits
// its batch.
func (r *projectorRole) Run(ctx context.Context) error {
	return runAll(ctx, r.events.Run, r.requests.Run)
}

// Close does nothing: the ClickHouse connection is the process's.
func (r *projectorRole) Close() {}

package main

import (
	"context"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
	"github.com/helpdeskflow/helpdeskflow/dispatch"
	"github.com/helpdeskflow/helpdeskflow/dispatch/handlers"
	"github.com/helpdeskflow/helpdeskflow/dispatch/pollers"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/kafka/recordlog"
)

// dispatcherRole runs the dispatcher (the handlers of Kafka events,
// handlers.All) and the pollers of the Postgres queues: SLA timers and,
// with HDF_SECRET_KEYS, webhook deliveries, integration jobs (Slack
// notifications, Shopify and Stripe lookups) and the mailbox sync and
// reply workers; and the retention job (docs/retention.md).
type dispatcherRole struct {
	runs   []func(context.Context) error
	closes []func()
}

// newDispatcherRole builds the dispatcher and the pollers on the process's
// rooms; without a keyring the dispatcher runs the log handler alone and
// only the SLA timers are polled.
func newDispatcherRole(p *process) (*dispatcherRole, error) {
	r := &dispatcherRole{}
	var outbound *handlers.Outbound
	if p.keyring != nil {
		// The service facts (webhook attempts, mailbox sync runs) go to
		// Kafka off the workers' paths, for the projector to write to
		// ClickHouse.
		facts, err := recordlog.New(recordlog.Config{Name: recordlog.NameServiceFacts, Topic: kafka.TopicServiceFacts,
			Brokers: p.brokers, Logger: p.logger, Registerer: p.reg, KafkaOptions: []kafka.Option{kafka.WithLogger(p.logger)}})
		if err != nil {
			return nil, err
		}
		r.closes = append(r.closes, func() { closeRecordLog(p.logger, facts) })
		base, factor, _ := p.cfg.webhookBackoff() // validated with the config
		deliveries, err := pollers.NewDeliveryWorker(pollers.DeliveryWorkerConfig{
			Store: webhookRooms{p.rooms.outbound, p.rooms.queues}, Secrets: p.keyring, BackoffBase: base, BackoffFactor: factor,
			Logger: p.logger, Registerer: p.reg, Sender: webhook.NewSender(webhook.Config{AllowLoopback: p.policy.AllowLoopback}),
			Outcomes: facts,
		})
		if err != nil {
			return nil, err
		}
		notifier, err := pollers.NewSlackNotifier(pollers.SlackNotifierConfig{Store: p.rooms.outbound, Poster: p.slack, Secrets: p.keyring,
			Auth: p.services.outbound, Tickets: p.services.tickets, Logger: p.logger, Registerer: p.reg})
		if err != nil {
			return nil, err
		}
		// Slack and the Shopify/Stripe lookups run in the job worker,
		// never in the dispatcher's consume loop.
		jobs, err := pollers.NewJobWorker(pollers.JobWorkerConfig{Store: p.rooms.queues, Logger: p.logger, Registerer: p.reg,
			Runners: map[string]pollers.JobRunner{helpdeskflow.JobSlackNotification: notifier, helpdeskflow.JobProfileLookup: p.linker}})
		if err != nil {
			return nil, err
		}
		mail, err := mailWorkers(p.cfg, mailRooms{p.rooms.connections, p.rooms.mail}, p.services.tickets, p.connections, facts, p.logger, p.reg)
		if err != nil {
			return nil, err
		}
		outbound = &handlers.Outbound{Webhooks: webhookRooms{p.rooms.outbound, p.rooms.queues}, Slack: p.rooms.outbound,
			Jobs: p.rooms.queues, Linker: p.linker}
		// Replays record their deliveries beside the consume loop, in
		// bounded batches.
		replays, err := pollers.NewReplayWorker(pollers.ReplayWorkerConfig{Store: p.rooms.queues, Events: p.rooms.events,
			Logger: p.logger, Registerer: p.reg})
		if err != nil {
			return nil, err
		}
		r.runs = append(r.runs, deliveries.Run, jobs.Run, replays.Run)
		r.runs = append(r.runs, mail...)
	}
	dispatcher, err := dispatch.New(dispatch.Config{
		Brokers: p.brokers, Pool: p.db, Events: p.rooms.events, Logger: p.logger, Registerer: p.reg,
		Membership: kafka.Membership{InstanceID: p.cfg.InstanceID}, // static with HDF_INSTANCE_ID
		Handlers:   handlers.All(handlers.Config{Logger: p.logger, Outbound: outbound}),
	})
	if err != nil {
		return nil, err
	}
	slaTimers, err := pollers.NewSLAWorker(pollers.SLAWorkerConfig{Timers: p.rooms.queues, Checker: p.services.tickets, Logger: p.logger, Registerer: p.reg})
	if err != nil {
		return nil, err
	}
	retain, closeRetain, err := newRetentionJob(p)
	if err != nil {
		return nil, err
	}
	r.runs = append(r.runs, dispatcher.Run, slaTimers.Run, retain.Run)
	r.closes = append(r.closes, closeRetain)
	return r, nil
}

// Run dispatches and polls until ctx ends; then the dispatcher records
// and commits its batch and the pollers finish (or release) their runs.
func (r *dispatcherRole) Run(ctx context.Context) error { return runAll(ctx, r.runs...) }

// Close closes the service facts' log (its buffered records get up to 10 s
// to reach Kafka) and the ClickHouse connection the retention job opened,
// if any; the rooms and clients are the process's. Call it after Run
// returned.
func (r *dispatcherRole) Close() {
	for _, c := range r.closes {
		c()
	}
}

// Package dispatch runs HelpDeskFlow's asynchronous side effects. A
// Dispatcher consumes the events topic in its own Kafka consumer group and
// hands every event to a list of Handlers (signed webhooks, Slack
// notifications, SLA timers, time-based automations), at least once and in
// per-stream version order. Redeliveries are dropped by (stream id, version)
// using the progress it keeps in Postgres (table dispatch_progress), so a
// handler normally sees an event once; a crash between a handler's success
// and the progress write can still repeat it, which is why handlers must be
// idempotent.
//
// The Dispatcher's batches (one per poll) are plugged into kafka.Consumer,
// the one consume loop, which commits their offsets after their progress is
// written. The package imports the root package, kafka, pgx and the Prometheus
// client; it is the only package besides eventstore that talks to Postgres.
package dispatch

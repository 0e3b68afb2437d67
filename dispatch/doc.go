// Package dispatch runs HelpDeskFlow's asynchronous side effects in two
// kinds of work, each in a folder of its own:
//
//   - handlers of Kafka events (dispatch/handlers, whose All is the one
//     list of them): a Dispatcher consumes the events topic in its own
//     Kafka consumer group and hands every event to its Handlers. A
//     handler reacts to an event and only writes Postgres (it queues a
//     webhook delivery, a Slack notification job, a customer lookup job);
//   - pollers of Postgres queues (dispatch/pollers): they lease what the
//     handlers queued, and the SLA timers, and call the outside world
//     (webhook endpoints, Slack, Shopify, Stripe) or the command areas,
//     never inside the consume loop.
//
// This package is the Dispatcher and its Handler contract. It calls the
// handlers at least once and in per-stream version order. Redeliveries are
// dropped by (stream id, version) using the progress it keeps in Postgres
// (store/progress, table dispatch_progress), so a handler normally sees an
// event once; a crash between a handler's success and the progress write
// can still repeat it, which is why handlers must be idempotent. A
// BatchHandler works through a polled batch at once: it reads what it
// needs for all the batch's events in one go and writes what they ask for
// together, before the progress is recorded.
//
// The Dispatcher's batches (one per poll) are plugged into kafka.Consumer,
// the one consume loop, which commits their offsets after their progress is
// written. The package imports the root package, kafka, store/pg,
// store/progress and the Prometheus client.
package dispatch

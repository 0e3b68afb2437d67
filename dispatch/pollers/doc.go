// Package pollers holds the dispatcher role's pollers of Postgres queues:
// the work the handlers (package dispatch/handlers) queued, and the SLA
// timers the ticket commands keep. A poller leases due rows of its queue,
// calls the outside world or the command areas with a timeout, and writes
// each outcome back; it runs beside the dispatcher, never inside its Kafka
// consume loop or a transaction, and any number of pollers in any number
// of processes share a queue.
//
// The pollers: DeliveryWorker (webhook deliveries: signed, retried with
// backoff), JobWorker (integration jobs, run by a JobRunner per kind:
// SlackNotifier posts Slack notifications, linkedprofiles.Linker looks
// customers up in Shopify and Stripe) and SLAWorker (SLA timers that are
// due). DeliveryWorker and JobWorker share one leased-queue loop
// (queueworker.go). The mailbox sync and reply workers are pollers too,
// of the mailboxes and the mail reply queue, but live in package mailsync
// beside the mail import they share.
package pollers

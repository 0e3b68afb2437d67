package recordlog

import (
	"encoding/json"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// The service facts: a Logger made with Name NameServiceFacts and Topic
// kafka.TopicServiceFacts publishes them; the projections package's
// FactsProjector writes them to ClickHouse.

// Longest endpoint a webhook attempt record carries, in bytes (webhook
// URLs are at most 2 KiB already; this keeps every record small whatever
// is stored).
const maxEndpointBytes = 2048

// RecordWebhookAttempt hands f to the Kafka client and returns at once, as
// Log does: keyed by the delivery id, its value the JSON encoding of f, its
// header hdf-fact "webhook_attempt", its timestamp f.Time. It never blocks
// the delivery worker; a full buffer drops f and counts it.
// (pollers.OutcomeRecorder.)
func (l *Logger) RecordWebhookAttempt(f helpdeskflow.WebhookAttemptFact) {
	f.Endpoint = helpdeskflow.CutUTF8(f.Endpoint, maxEndpointBytes)
	l.publish([]byte(f.DeliveryID.String()), f.Time, factHeader(helpdeskflow.FactWebhookAttempt),
		func() ([]byte, error) { return json.Marshal(f) })
}

// RecordMailSync hands f to the Kafka client and returns at once, as Log
// does: keyed by the connection id, its value the JSON encoding of f, its
// header hdf-fact "mail_sync", its timestamp f.Time. (mailsync.SyncRecorder.)
func (l *Logger) RecordMailSync(f helpdeskflow.MailSyncFact) {
	l.publish([]byte(f.ConnectionID.String()), f.Time, factHeader(helpdeskflow.FactMailSync),
		func() ([]byte, error) { return json.Marshal(f) })
}

func factHeader(kind string) []kafka.RecordHeader {
	return []kafka.RecordHeader{{Key: kafka.HeaderFact, Value: []byte(kind)}}
}

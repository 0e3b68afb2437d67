// Package kafka owns HelpDeskFlow's use of Kafka: the topic names and record
// headers, the wire format of events (NewRecord, ClaimCheck, Decode), the
// franz-go logger adapter (NewLogger), the consumers' lag tracking
// (LagTracker) and metric registration (Register).
package kafka

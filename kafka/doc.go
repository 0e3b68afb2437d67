// Package kafka owns HelpDeskFlow's use of Kafka; only it and the relay
// import franz-go. It holds:
//
//   - the topic names and record headers (TopicEvents, HeaderEventID, …);
//   - the wire format of events (NewRecord: the stored data as the value,
//     the envelope in headers; ClaimCheck; Decode, which reads this format
//     and the first one and resolves claim checks through a Loader;
//     RecordBytes);
//   - the producer the relay and the request log publish through
//     (NewProducer), topic creation (EnsureTopics) and the embedded broker
//     of `helpdeskflow dev` (StartBroker);
//   - the one consume loop (Consumer): poll, batch by count, bytes and
//     time, flush through a Batch, commit after the flush, hold rebalances
//     back until then, leave the group on stop (unless a static member:
//     Membership), lag metrics, and the
//     consumers' shared metrics (NewErrorCounter with the error kinds the
//     loop and Decode count, NewLagGauge). The projector,
//     the request-log projector and the dispatcher are Batches plugged into
//     it;
//   - the franz-go logger adapter (NewLogger), the lag tracker (LagTracker)
//     and the retry with backoff the Batches use (Retry).
package kafka

#!/bin/sh
# HelpDeskFlow's Kafka topics: creates them when missing and sets, on new and existing topics
# alike, the largest record they take and how long they keep records. docker-compose.yml's
# kafka-init service and this folder's kafka-topics Job run it, in the apache/kafka image:
#
#   BOOTSTRAP_SERVER=kafka:9092 [PARTITIONS=8] [REPLICATION_FACTOR=3] sh kafka-topics.sh
#
# PARTITIONS applies to new topics only (8 is what `helpdeskflow serve` creates a missing topic
# with); more partitions let more projector and dispatcher processes share the work.
#
# max.message.bytes: the producers send record batches of up to 1,000,000 bytes
# (helpdeskflow.MaxRecordBytes; one event is at most 900,000). A topic that refuses them makes the
# relay publish claim checks, which consumers load from Postgres (slower). 1048588 is Kafka's
# default, spelled out so that nobody lowers it.
#
# retention.ms: Kafka carries the events; the event store in Postgres keeps them for good.
#   helpdeskflow.events        7 days. A projector or dispatcher stopped for longer resumes at the
#                              oldest record Kafka still has: rebuild its read models from the
#                              event store (helpdeskflow projections rebuild); webhooks and Slack
#                              notifications of the events it missed are not sent.
#   helpdeskflow.api-requests  3 days. The request log on its way to ClickHouse (api_requests); a
#                              projector stopped for longer loses the oldest records (the request
#                              log is best effort: helpdeskflow_request_log_dropped_total).
#   helpdeskflow.service-facts 3 days. Webhook attempts and mailbox sync runs on their way to
#                              ClickHouse (webhook_attempts, mail_syncs); best effort like the
#                              request log (helpdeskflow_service_facts_dropped_total).
set -eu
bin=${KAFKA_BIN:-/opt/kafka/bin}
bootstrap=${BOOTSTRAP_SERVER:?set BOOTSTRAP_SERVER, e.g. kafka:9092}
partitions=${PARTITIONS:-8}
replication=${REPLICATION_FACTOR:-1}
max_message_bytes=1048588
min_insync=1
if [ "$replication" -gt 1 ]; then min_insync=2; fi

topic() { # name retention.ms
  "$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --create --if-not-exists --topic "$1" \
    --partitions "$partitions" --replication-factor "$replication"
  "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --alter --entity-type topics --entity-name "$1" \
    --add-config "max.message.bytes=$max_message_bytes,retention.ms=$2,min.insync.replicas=$min_insync"
}

topic helpdeskflow.events 604800000
topic helpdeskflow.api-requests 259200000
topic helpdeskflow.service-facts 259200000

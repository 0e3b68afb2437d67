package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// runBroker runs a single-node Kafka-protocol broker (kfake, the one `dev`
// embeds) as a process of its own until ctx ends, for `serve` roles that
// are separate processes on one machine (the chaos suite): its data lives
// under <data-dir>/kafka, so a stopped broker restarts with every record
// and committed offset; it listens on 127.0.0.1:<kafka-port> (0: any free
// port) with the topics and partitions serve expects, and prints its
// address on stdout once it accepts connections. Stop it with SIGTERM or
// SIGINT: a SIGKILL may lose what was not yet written to disk.
func runBroker(ctx context.Context, cfg config, logger *slog.Logger, stdout io.Writer) error {
	dir := filepath.Join(cfg.DataDir, "kafka")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	addrs, stop, err := kafka.StartBroker(dir, cfg.KafkaPort, topicPartitions, kafka.TopicEvents, kafka.TopicAPIRequests, kafka.TopicServiceFacts)
	if err != nil {
		return fmt.Errorf("start Kafka broker: %w", err)
	}
	defer stop()
	logger.Info("Kafka broker running", "addr", addrs, "data_dir", dir)
	fmt.Fprintf(stdout, "broker listening on %s\n", addrs[0])
	<-ctx.Done()
	logger.Info("stopping Kafka broker")
	return nil
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/helpdeskflow/helpdeskflow"
)

// Client is a franz-go client (kgo.Client), as NewProducer returns it: the
// relay publishes through its ProduceSync, the request log through its
// TryProduce, Flush and Close, and readiness checks call its Ping.
type Client = kgo.Client

// Errors a producer's promise can get: ErrMaxBuffered when the client's
// buffer is full, ErrClientClosed or ErrAborting when the record was failed
// because the client closed.
var (
	ErrMaxBuffered  = kgo.ErrMaxBuffered
	ErrClientClosed = kgo.ErrClientClosed
	ErrAborting     = kgo.ErrAborting
)

// ProducerConfig configures NewProducer. Brokers is required; zero fields
// leave franz-go's defaults.
type ProducerConfig struct {
	// Brokers are the seed brokers ("host:port").
	Brokers []string
	// DefaultTopic is the topic of records produced without one.
	DefaultTopic string
	// Linger is how long the client waits for more records to fill a
	// batch.
	Linger time.Duration
	// MaxBuffered and MaxBufferedBytes bound the records the client holds
	// that the broker has not acknowledged (franz-go's defaults: 10,000
	// records, no byte bound).
	MaxBuffered      int
	MaxBufferedBytes int
	// Logger receives the client's logs, quietened (NewLogger). Default:
	// discarded.
	Logger *slog.Logger
	// Options are extra franz-go client options, applied after these.
	Options []Option
}

// NewProducer returns a client producing to cfg.Brokers. Its batches hold
// up to helpdeskflow.MaxRecordBytes, so the largest event the store accepts
// goes as itself, and records wait for the broker instead of failing: no
// retry limit and no delivery timeout (franz-go's defaults, spelled out
// because the callers' buffering depends on them). It does not connect; it
// returns an EValidation error when franz-go rejects the options.
func NewProducer(cfg ProducerConfig) (*Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ProducerBatchMaxBytes(helpdeskflow.MaxRecordBytes),
		kgo.RecordRetries(math.MaxInt),
		kgo.RecordDeliveryTimeout(0),
	}
	if cfg.DefaultTopic != "" {
		opts = append(opts, kgo.DefaultProduceTopic(cfg.DefaultTopic))
	}
	if cfg.Linger > 0 {
		opts = append(opts, kgo.ProducerLinger(cfg.Linger))
	}
	if cfg.MaxBuffered > 0 {
		opts = append(opts, kgo.MaxBufferedRecords(cfg.MaxBuffered))
	}
	if cfg.MaxBufferedBytes > 0 {
		opts = append(opts, kgo.MaxBufferedBytes(cfg.MaxBufferedBytes))
	}
	if cfg.Logger != nil {
		opts = append(opts, WithLogger(cfg.Logger))
	}
	client, err := kgo.NewClient(append(opts, cfg.Options...)...)
	if err != nil {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "create Kafka producer", Err: err}
	}
	return client, nil
}

// WithLogger is the client option that sends a client's logs to logger,
// quietened (NewLogger).
func WithLogger(logger *slog.Logger) Option {
	return kgo.WithLogger(NewLogger(logger))
}

// EnsureTopics creates those of topics that do not exist yet, with
// partitions partitions each and the broker's replication factor, so
// consumers can join before the first record is published. It returns an
// EUnavailable error when the broker cannot be asked or refuses.
func EnsureTopics(ctx context.Context, client *Client, partitions int32, topics ...string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	for _, name := range topics {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = name
		t.NumPartitions = partitions
		t.ReplicationFactor = -1
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "create Kafka topics", Err: err}
	}
	for _, t := range resp.Topics {
		if t.ErrorCode != 0 && t.ErrorCode != 36 { // 36: TOPIC_ALREADY_EXISTS
			return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: fmt.Sprintf("create Kafka topic %s: error code %d", t.Topic, t.ErrorCode)}
		}
	}
	return nil
}

// StartBroker starts an embedded Kafka-protocol broker (franz-go's kfake)
// for `helpdeskflow dev`: one broker listening on port (0: any free
// port), keeping its data under dataDir (empty: in memory), with topics
// created with partitions partitions each. It returns the broker's
// addresses and a function that stops it.
func StartBroker(dataDir string, port int, partitions int32, topics ...string) (addrs []string, stop func(), err error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...)}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, nil, err
	}
	return cluster.ListenAddrs(), cluster.Close, nil
}

// CheckBrokers returns the problems of a configuration's seed brokers, each
// naming the field: none given ("brokers") or an empty address
// ("brokers[i]"). Every Kafka client's Validate starts with it.
func CheckBrokers(brokers []string) []error {
	var errs []error
	if len(brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one Kafka broker is required"))
	}
	for i, b := range brokers {
		if strings.TrimSpace(b) == "" {
			errs = append(errs, fmt.Errorf("brokers[%d]: empty address", i))
		}
	}
	return errs
}

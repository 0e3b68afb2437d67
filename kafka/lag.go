// This file holds the consumers' lag bookkeeping (projector, request-log
// projector, dispatcher).

package kafka

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LagTracker keeps, for each partition of one topic that a consumer has
// fetched from, the high watermark and log start offset of its latest fetch,
// and from them sets a consumer-lag gauge.
//
// A LagTracker is safe for concurrent use: Forget is typically called from
// the partition revoked/lost callbacks, which run on the Kafka client's
// goroutines while the poll loop calls Note and Update.
type LagTracker struct {
	topic string
	gauge *prometheus.GaugeVec // labels: topic, partition

	mu    sync.Mutex
	marks map[int32]partitionMarks
}

type partitionMarks struct {
	highWatermark  int64
	logStartOffset int64
}

// NewLagTracker returns a LagTracker for topic that sets gauge, whose labels
// are topic and partition (in that order).
func NewLagTracker(topic string, gauge *prometheus.GaugeVec) *LagTracker {
	return &LagTracker{topic: topic, gauge: gauge, marks: map[int32]partitionMarks{}}
}

// Note records the high watermark and log start offset of every partition of
// the tracker's topic in fetches. Partitions of other topics and partitions
// whose fetch failed are ignored.
func (t *LagTracker) Note(fetches kgo.Fetches) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Topic != t.topic || fp.Partition < 0 || fp.Err != nil {
			return
		}
		t.marks[fp.Partition] = partitionMarks{highWatermark: fp.HighWatermark, logStartOffset: fp.LogStartOffset}
	})
}

// Update sets the lag gauge of every noted partition: the high watermark of
// its latest fetch minus cl's committed offset there (or the log start
// offset before the first commit), never below zero.
func (t *LagTracker) Update(cl *kgo.Client) {
	committed := cl.CommittedOffsets()[t.topic]
	t.mu.Lock()
	defer t.mu.Unlock()
	for partition, mk := range t.marks {
		base := mk.logStartOffset
		if c, ok := committed[partition]; ok && c.Offset >= 0 {
			base = c.Offset
		}
		t.gauge.WithLabelValues(t.topic, strconv.Itoa(int(partition))).Set(float64(max(mk.highWatermark-base, 0)))
	}
}

// Partitions returns the noted partitions, in no particular order.
func (t *LagTracker) Partitions() []int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := make([]int32, 0, len(t.marks))
	for partition := range t.marks {
		parts = append(parts, partition)
	}
	return parts
}

// Forget drops the marks and the lag series of partitions, which the
// consumer no longer owns, so that only the new owner's gauge is left.
func (t *LagTracker) Forget(partitions []int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, partition := range partitions {
		delete(t.marks, partition)
		t.gauge.DeleteLabelValues(t.topic, strconv.Itoa(int(partition)))
	}
}

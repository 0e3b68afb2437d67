package kafka

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow"
)

// Watermark records are how the relay tells the events topic's consumers
// how far it has published, partition by partition: after each round of
// events (and now and then while idle) it publishes one to every
// partition, after that round's events, saying "every event up to this
// position that belongs on this partition is before me". A consumer that
// has applied a partition up to a watermark has applied everything of
// that partition up to the watermark's position, even when the partition
// had no event for a long time; the projector uses them to know how far
// the read model has got (read-your-writes for lists).
//
// A watermark record has no value, a key chosen only so that the default
// (Kafka's murmur2) partitioner puts it on its partition, and the headers
// HeaderWatermark (the position, as HeaderPosition writes it) and
// HeaderPartitions (how many partitions the topic had when it was
// published). Consumers other than the projector skip them: the Consumer
// loop does unless ConsumerConfig.Watermarks is set, and Decode answers
// ErrWatermark for one.
const (
	HeaderWatermark  = "hdf-watermark"
	HeaderPartitions = "hdf-partitions"
)

// ErrWatermark is Decode's error for a watermark record: not an event, and
// not a fault either; callers skip it without logging or counting.
var ErrWatermark = errors.New("record is a watermark, not an event")

// Watermark is what a watermark record says: every event at or before
// Position that belongs on Partition was published before it, and the
// topic had Partitions partitions.
type Watermark struct {
	Partition  int32
	Partitions int32
	Position   helpdeskflow.Position
}

// NewWatermarks returns the watermark records of position p for each of
// the partitions partitions of topic, in partition order. Each is keyed so
// that the default partitioner (murmur2 of the key, as Kafka's) puts it on
// its partition, and carries that partition in its Partition field too
// (which a manual partitioner would use). partitions must be positive.
func NewWatermarks(topic string, p helpdeskflow.Position, partitions int) []*kgo.Record {
	keys := watermarkKeys(partitions)
	value := appendPosition(nil, p)
	count := []byte(strconv.Itoa(partitions))
	records := make([]*kgo.Record, partitions)
	for i := range records {
		records[i] = &kgo.Record{Topic: topic, Key: keys[i], Partition: int32(i), Headers: []kgo.RecordHeader{
			{Key: HeaderWatermark, Value: value}, {Key: HeaderPartitions, Value: count}}}
	}
	return records
}

// IsWatermark reports whether r is a watermark record. It is cheap enough
// to ask of every record: an event's record has a value (a claim check
// has none, but then its first header is not HeaderWatermark).
func IsWatermark(r *kgo.Record) bool {
	return len(r.Value) == 0 && len(r.Headers) > 0 && r.Headers[0].Key == HeaderWatermark
}

// ParseWatermark reads the watermark record r, as consumed (its Partition
// is where it was read from). It returns an error naming the header when r
// is not a well-formed watermark.
func ParseWatermark(r *kgo.Record) (Watermark, error) {
	if !IsWatermark(r) {
		return Watermark{}, errors.New("not a watermark record")
	}
	w := Watermark{Partition: r.Partition}
	var err error
	if w.Position, err = parsePosition(r.Headers[0].Value); err != nil {
		return Watermark{}, fmt.Errorf("header %s: %w", HeaderWatermark, err)
	}
	for _, h := range r.Headers[1:] {
		if h.Key == HeaderPartitions {
			n, err := strconv.ParseInt(string(h.Value), 10, 32)
			if err != nil || n < 1 {
				return Watermark{}, fmt.Errorf("header %s: want a positive number, got %q", HeaderPartitions, h.Value)
			}
			w.Partitions = int32(n)
		}
	}
	if w.Partitions == 0 {
		return Watermark{}, errors.New("no " + HeaderPartitions)
	}
	return w, nil
}

// appendPosition appends p as "<transaction id>.<sequence number>".
func appendPosition(b []byte, p helpdeskflow.Position) []byte {
	b = strconv.AppendUint(b, p.TxID, 10)
	b = append(b, '.')
	return strconv.AppendInt(b, p.Seq, 10)
}

// parsePosition reads what appendPosition writes.
func parsePosition(v []byte) (helpdeskflow.Position, error) {
	tx, seq, ok := bytes.Cut(v, []byte{'.'})
	if !ok {
		return helpdeskflow.Position{}, errors.New("no '.'")
	}
	var p helpdeskflow.Position
	var err error
	if p.TxID, err = strconv.ParseUint(string(tx), 10, 64); err != nil {
		return helpdeskflow.Position{}, err
	}
	if p.Seq, err = strconv.ParseInt(string(seq), 10, 64); err != nil {
		return helpdeskflow.Position{}, err
	}
	return p, nil
}

// watermarkKeysByCount caches watermarkKeys per partition count.
var watermarkKeysByCount sync.Map // int → [][]byte

// watermarkKeys returns, for each of n partitions, a key that Kafka's
// default partitioner (murmur2) maps to it.
func watermarkKeys(n int) [][]byte {
	if keys, ok := watermarkKeysByCount.Load(n); ok {
		return keys.([][]byte)
	}
	hash := kgo.StickyKeyPartitioner(nil).ForTopic("")
	keys := make([][]byte, n)
	for found, i := 0, 0; found < n; i++ {
		key := []byte("hdf-watermark-" + strconv.Itoa(i))
		if p := hash.Partition(&kgo.Record{Key: key}, n); keys[p] == nil {
			keys[p] = key
			found++
		}
	}
	watermarkKeysByCount.Store(n, keys)
	return keys
}

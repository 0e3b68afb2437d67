package projections

import (
	"context"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// positionsTable is where the projector keeps how far it has applied each
// partition of the events topic (migration 0008).
const positionsTable = "projection_positions"

// appliedPositions is how far a batch takes each partition once its rows
// are in ClickHouse: the latest position of its events and of the relay's
// watermarks, per partition. The relay publishes in commit order, so a
// record at position P on a partition comes after every event of that
// partition up to P.
type appliedPositions map[int32]helpdeskflow.Position

// note records that partition is applied up to p (if that is further).
func (a appliedPositions) note(partition int32, p helpdeskflow.Position) {
	if p == (helpdeskflow.Position{}) {
		return // a record of the first format carries no position
	}
	if cur, ok := a[partition]; !ok || cur.Less(p) {
		a[partition] = p
	}
}

// noteWatermark takes the watermark record r into b's positions and the
// topic's partition count; a malformed one is logged, counted and skipped.
func (p *Projector) noteWatermark(b *batch, r *kafka.Record) {
	w, err := kafka.ParseWatermark(r)
	if err != nil {
		p.m.errors.WithLabelValues(kafka.ErrKindDecode).Inc()
		p.log.Error("projector: malformed watermark record; skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	p.partitions = w.Partitions
	b.applied.note(w.Partition, w.Position)
}

// savePositions writes how far b takes each partition, after b's rows are
// in: from then on a list may say it reflects those positions.
func (p *Projector) savePositions(ctx context.Context, b *batch) error {
	if len(b.applied) == 0 {
		return nil
	}
	var partitions, counts []uint32
	var txIDs []uint64
	var seqs []int64
	for partition, pos := range b.applied {
		partitions = append(partitions, uint32(partition))
		counts = append(counts, uint32(p.partitions))
		txIDs = append(txIDs, pos.TxID)
		seqs = append(seqs, pos.Seq)
	}
	return insertColumns(ctx, p.cfg.ClickHouse, positionsTable, "kafka_partition, partitions, tx_id, seq",
		[]any{partitions, counts, txIDs, seqs})
}

// PositionReader reads how far the projector has applied the events topic
// (projection_positions). It is safe for concurrent use.
type PositionReader struct {
	conn driver.Conn
}

// NewPositionReader returns a PositionReader on conn, a connection bound to
// the projection database; it does not close conn.
func NewPositionReader(conn driver.Conn) *PositionReader { return &PositionReader{conn: conn} }

// Applied returns the position up to which the read model holds every
// event: the smallest of the partitions' latest applied positions. It is
// the zero Position while any partition of the topic (as many as the
// relay's watermarks announced) has none. It returns EUnavailable when
// ClickHouse cannot be reached and EInternal when the query fails.
func (r *PositionReader) Applied(ctx context.Context) (helpdeskflow.Position, error) {
	// The partition count is the largest any row announced: a row saved
	// from events alone, before the projector saw a watermark, says 0.
	rows, err := r.conn.Query(ctx, `SELECT kafka_partition, (SELECT max(partitions) FROM `+positionsTable+`), tx_id, seq
		FROM `+positionsTable+` ORDER BY kafka_partition, tx_id DESC, seq DESC LIMIT 1 BY kafka_partition`)
	if err != nil {
		return helpdeskflow.Position{}, chError("read projection positions", err)
	}
	defer rows.Close()
	var lowest helpdeskflow.Position
	var count, partitions uint32
	for rows.Next() {
		var partition, n uint32
		var p helpdeskflow.Position
		if err := rows.Scan(&partition, &n, &p.TxID, &p.Seq); err != nil {
			return helpdeskflow.Position{}, chError("read projection positions", err)
		}
		if count == 0 || p.Less(lowest) {
			lowest = p
		}
		count++
		partitions = max(partitions, n)
	}
	if err := rows.Err(); err != nil {
		return helpdeskflow.Position{}, chError("read projection positions", err)
	}
	if partitions == 0 || count < partitions {
		return helpdeskflow.Position{}, nil
	}
	return lowest, nil
}

// AppliedSource tells how far the read model has got (*PositionReader).
type AppliedSource interface {
	Applied(ctx context.Context) (helpdeskflow.Position, error)
}

// PositionWatcherConfig configures a PositionWatcher; zero fields take the
// defaults named on each.
type PositionWatcherConfig struct {
	// MaxAge is how old the applied position Current answers may be.
	// Default 1 s.
	MaxAge time.Duration
	// PollInterval is how often the one shared poll reads the applied
	// position while WaitFor calls wait. Default 50 ms.
	PollInterval time.Duration
	// QueryTimeout bounds each read. Default 2 s.
	QueryTimeout time.Duration
}

// PositionWatcher is an API process's view of how far the read model has
// got, shared by its requests: Current answers from a copy at most MaxAge
// old (one read per MaxAge, whoever asks), and WaitFor calls share one
// poll, running only while some wait. It is safe for concurrent use.
type PositionWatcher struct {
	src AppliedSource
	cfg PositionWatcherConfig

	mu         sync.Mutex
	applied    helpdeskflow.Position
	readAt     time.Time
	readErr    error
	refreshing chan struct{} // closed when the read in flight ends; nil when none
	waiters    map[*positionWaiter]struct{}
	polling    bool
}

// positionWaiter is one WaitFor call: it gets the applied position once it
// reaches target.
type positionWaiter struct {
	target  helpdeskflow.Position
	reached chan helpdeskflow.Position // buffered: the poll never blocks on it
}

// NewPositionWatcher returns a watcher reading src.
func NewPositionWatcher(src AppliedSource, cfg PositionWatcherConfig) *PositionWatcher {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 2 * time.Second
	}
	return &PositionWatcher{src: src, cfg: cfg, waiters: map[*positionWaiter]struct{}{}}
}

// Current returns the position up to which the read model held every
// event when it was last read, at most MaxAge ago; when the copy is older
// it reads it, one read for all callers at once. It returns the read's
// error (EUnavailable, EInternal) when it fails, or ctx's.
func (w *PositionWatcher) Current(ctx context.Context) (helpdeskflow.Position, error) {
	w.mu.Lock()
	if !w.readAt.IsZero() && time.Since(w.readAt) < w.cfg.MaxAge {
		defer w.mu.Unlock()
		return w.applied, nil
	}
	done := w.refreshing
	if done == nil {
		done = make(chan struct{})
		w.refreshing = done
		go w.refresh(ctx, done)
	}
	w.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return helpdeskflow.Position{}, helpdeskflow.Errorf(helpdeskflow.EUnavailable, "the request ended while reading the read model's position")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applied, w.readErr
}

// refresh reads the applied position for Current and closes done.
func (w *PositionWatcher) refresh(ctx context.Context, done chan struct{}) {
	w.read(context.WithoutCancel(ctx))
	w.mu.Lock()
	w.refreshing = nil
	w.mu.Unlock()
	close(done)
}

// read reads the applied position (within QueryTimeout), keeps it and
// hands it to the waiters it satisfies.
func (w *PositionWatcher) read(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.QueryTimeout)
	defer cancel()
	p, err := w.src.Applied(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.readErr = err
	if err != nil {
		return
	}
	w.applied, w.readAt = p, time.Now()
	for wt := range w.waiters {
		if !p.Less(wt.target) {
			wt.reached <- p
			delete(w.waiters, wt)
		}
	}
}

// WaitFor waits until the read model holds every event up to p, or
// maxWait passes, and returns the applied position it saw last: reached
// reports whether that is p or later. It returns Current's errors, and an
// EUnavailable error when ctx ends first.
func (w *PositionWatcher) WaitFor(ctx context.Context, p helpdeskflow.Position, maxWait time.Duration) (applied helpdeskflow.Position, reached bool, err error) {
	if applied, err = w.Current(ctx); err != nil || !applied.Less(p) {
		return applied, err == nil, err
	}
	wt := &positionWaiter{target: p, reached: make(chan helpdeskflow.Position, 1)}
	w.mu.Lock()
	w.waiters[wt] = struct{}{}
	if !w.polling {
		w.polling = true
		go w.poll()
	}
	w.mu.Unlock()
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	select {
	case applied = <-wt.reached:
		return applied, true, nil
	case <-timer.C:
	case <-ctx.Done():
		err = helpdeskflow.Errorf(helpdeskflow.EUnavailable, "the request ended while waiting for the read model")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waiters, wt)
	select {
	case applied = <-wt.reached: // reached as the wait ended
		return applied, true, nil
	default:
		return w.applied, false, err
	}
}

// poll reads the applied position every PollInterval while WaitFor calls
// wait, then ends.
func (w *PositionWatcher) poll() {
	for {
		time.Sleep(w.cfg.PollInterval)
		w.read(context.Background())
		w.mu.Lock()
		if len(w.waiters) == 0 {
			w.polling = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

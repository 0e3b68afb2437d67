package main

import (
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
)

// The capacity phase: the production shape (the broker and each role in
// a process of its own, roles.go) on databases of its own, under creates
// paced well below saturation (every webhook-subscribed), then under
// composite reads, measuring each process's CPU per operation beyond its
// idle cost, and the WAL bytes per create. These per-operation costs are
// what the README's scaling model multiplies out; two cores cannot show
// scale-out, but they can show the cost of one event in each consumer.
//
// Every process's CPU is counted from a moment the pipeline is idle until
// it has caught up again (the projector has every ticket, the receiver
// every delivery), so work queued during the window is counted whole;
// the processes' idle CPU over the same span is subtracted.

// capacityProcs are the processes whose CPU the phase splits, in report
// order: the shape's, then the servers.
var capacityProcs = []string{"api", "relay", "projector", "dispatcher", "broker", "postgres", "clickhouse"}

// capacityResult is the phase as results.json shows it.
type capacityResult struct {
	CreateRate      float64 `json:"create_rate_per_second"`
	Creates         int64   `json:"creates"`
	CreateErrors    int64   `json:"create_errors"`
	Events          int64   `json:"events"`
	EventsPerCreate float64 `json:"events_per_create"`
	Deliveries      int64   `json:"webhook_deliveries"`
	CreateSeconds   float64 `json:"create_span_seconds"` // the load and the catch-up after it
	CatchUpSeconds  float64 `json:"catch_up_seconds"`
	ReadRate        float64 `json:"read_rate_per_second"`
	Reads           int64   `json:"reads"`
	ReadErrors      int64   `json:"read_errors"`
	ReadSeconds     float64 `json:"read_span_seconds"`
	Partitions      int     `json:"partitions"`

	IdlePct      map[string]float64 `json:"idle_pct_of_a_core"`   // by process
	PerCreateMs  map[string]float64 `json:"cpu_ms_per_create"`    // beyond idle, by process
	PerReadMs    map[string]float64 `json:"cpu_ms_per_read"`      // beyond idle, by process
	WALPerCreate float64            `json:"wal_bytes_per_create"` // pg_current_wal_lsn over the create span, the whole server
	RSSKB        map[string]uint64  `json:"rss_kb_after"`         // by process of the shape
	Model        []capacityModelRow `json:"model"`
}

// capacityRun is the phase's state: the databases, the processes and the
// CPU readings.
type capacityRun struct {
	b      *bench
	env    *phaseEnv
	shape  *shape
	key    string
	client *nethttp.Client
	hooks  *hookReceiver
}

func (b *bench) runCapacity(ctx context.Context, bodies [][]byte) (err error) {
	res := &capacityResult{CreateRate: b.o.capacityRate, ReadRate: b.o.capacityReadRate, Partitions: capacityPartitions}
	b.res.Capacity = res
	r := &capacityRun{b: b, client: newClient(openLoopMaxInFlight)}
	defer r.client.CloseIdleConnections()
	if err := r.start(ctx); err != nil {
		return fmt.Errorf("capacity: %w", err)
	}
	defer func() {
		res.RSSKB = map[string]uint64{}
		for name, pid := range r.shape.pids() {
			res.RSSKB[name], _ = memory(pid)
		}
		if serr := r.shape.stop(); serr != nil {
			b.res.note("capacity: %v", serr)
		}
		r.hooks.close()
		r.env.closeInto(&err)
	}()

	// Warm-up: connections, prepared statements, the first topic
	// metadata; then the idle cost of every process.
	logf("capacity: warm-up, %s at %.0f creates/s", b.o.warmup, res.CreateRate)
	warm := runOpenLoop(ctx, res.CreateRate, 0, b.o.warmup, openLoopMaxInFlight, nil, r.create(bodies))
	if _, err := r.caughtUp(ctx, warm.Requests); err != nil {
		return err
	}
	idleSpan := 5 * time.Second
	i0 := r.cpu()
	poll.Sleep(ctx, idleSpan)
	idle := r.cpu().since(i0)
	res.IdlePct = idle.pct()

	// Creates.
	logf("capacity: %s at %.0f creates/s, each subscribed by a webhook", b.o.duration, res.CreateRate)
	events0, err := r.events(ctx)
	if err != nil {
		return err
	}
	wal0, err := r.env.pg.queryString(ctx, "SELECT pg_current_wal_lsn()::text")
	if err != nil {
		return err
	}
	c0 := r.cpu()
	ol := runOpenLoop(ctx, res.CreateRate, 0, b.o.duration, openLoopMaxInFlight, nil, r.create(bodies))
	loadEnd := time.Now()
	if _, err := r.caughtUp(ctx, warm.Requests+ol.Requests); err != nil {
		return err
	}
	create := r.cpu().since(c0)
	res.CatchUpSeconds = round3(time.Since(loadEnd).Seconds())
	walBytes, err := r.env.pg.queryString(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint::text", wal0)
	if err != nil {
		return err
	}
	events1, err := r.events(ctx)
	if err != nil {
		return err
	}
	res.Creates, res.CreateErrors, res.CreateSeconds = ol.Requests, ol.Errors, round3(create.seconds)
	res.Events, res.Deliveries = events1-events0, r.hooks.requests.Load()-warm.Requests
	if ol.Requests > 0 {
		res.EventsPerCreate = round3(float64(res.Events) / float64(ol.Requests))
		wal, _ := strconv.ParseFloat(walBytes, 64)
		res.WALPerCreate = round1(wal / float64(ol.Requests))
	}
	res.PerCreateMs = create.msPerOp(idle, ol.Requests)
	if ol.Errors > 0 {
		b.res.note("capacity: %d of %d creates failed (%v); the first: %s", ol.Errors, ol.Errors+ol.Requests, ol.ErrorsByKind, ol.FirstError)
	}

	// Composite reads of the tickets just created. The request log's
	// records of the reads reach ClickHouse within its 1 s batches: the
	// span ends 2 s after the load.
	ids, err := r.ticketIDs(ctx, 1000)
	if err != nil {
		return err
	}
	logf("capacity: %s at %.0f composite reads/s over %d tickets", b.o.duration, res.ReadRate, len(ids))
	r0 := r.cpu()
	rl := runOpenLoop(ctx, res.ReadRate, 0, b.o.duration, openLoopMaxInFlight, nil, func(ctx context.Context, i int) outcome {
		_, kind, err := get(ctx, r.client, r.shape.apiURL+"/v1/tickets/"+ids[i%len(ids)], r.key, false)
		return outcome{kind: kind, err: err}
	})
	poll.Sleep(ctx, 2*time.Second)
	read := r.cpu().since(r0)
	res.Reads, res.ReadErrors, res.ReadSeconds = rl.Requests, rl.Errors, round3(read.seconds)
	res.PerReadMs = read.msPerOp(idle, rl.Requests)
	if rl.Errors > 0 {
		b.res.note("capacity: %d of %d reads failed (%v); the first: %s", rl.Errors, rl.Errors+rl.Requests, rl.ErrorsByKind, rl.FirstError)
	}
	res.Model = capacityModel(res, b.res)
	logf("capacity: ms per create %v; per read %v; WAL %.0f bytes per create", res.PerCreateMs, res.PerReadMs, res.WALPerCreate)
	return ctx.Err()
}

// start sets up the phase's databases (migrated, with a workspace and a
// webhook to a local receiver) and starts the production shape on them.
func (r *capacityRun) start(ctx context.Context) (err error) {
	b := r.b
	r.env = &phaseEnv{cfg: envConfig{postgresURL: b.cfg.postgresURL, name: b.cfg.name + "_cap", keep: b.cfg.keep, dev: b.cfg.dev}}
	defer func() {
		if err != nil {
			r.env.closeInto(&err)
		}
	}()
	if r.env.pg, err = createPostgresDatabase(ctx, r.env.cfg.postgresURL, r.env.cfg.name); err != nil {
		return err
	}
	r.env.chDB = r.env.cfg.name
	if r.env.chOpts, err = clickHouseOptions(b.cfg.dev.clickHouseAddr); err != nil {
		return err
	}
	if err := r.helpdeskflow(ctx, "migrate"); err != nil {
		return err
	}
	if r.env.ch, err = openClickHouse(ctx, r.env.chOpts); err != nil {
		return err
	}
	if _, r.key, err = r.env.createWorkspace(ctx, "capacity"); err != nil {
		return err
	}
	dir := filepath.Join(b.tmp, "capacity")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if r.shape, err = startShape(ctx, *b.cfg.dev, dir, r.env.pg.url, r.env.chDB); err != nil {
		return err
	}
	if r.hooks, err = startHookReceiver(1); err != nil {
		return err
	}
	if err := raiseLimits(ctx, r.client, r.shape.apiURL, r.key, helpdeskflow.RateTicketsCreate, helpdeskflow.RateTicketsRead); err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"url": r.hooks.url(0), "event_types": []string{"ticket.created"}})
	status, raw, err := send(ctx, r.client, "POST", r.shape.apiURL+"/v1/webhooks", r.key, body)
	if err != nil || status != nethttp.StatusCreated {
		return fmt.Errorf("create the webhook: status %d: %v %s", status, err, trimBody(raw))
	}
	var hook struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(raw, &hook); err != nil {
		return fmt.Errorf("create the webhook: %w", err)
	}
	r.hooks.secrets[0] = hook.Secret
	return nil
}

// helpdeskflow runs a one-off helpdeskflow command on the phase's
// databases.
func (r *capacityRun) helpdeskflow(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c := r.b.cfg.dev
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir = c.tmp
	cmd.Env = childEnv(false, "HDF_POSTGRES_URL="+r.env.pg.url, "HDF_CLICKHOUSE_ADDR="+c.clickHouseAddr,
		"HDF_CLICKHOUSE_DATABASE="+r.env.chDB, "HDF_LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helpdeskflow %v: %w: %s", args, err, trimBody(out))
	}
	return nil
}

func (r *capacityRun) create(bodies [][]byte) func(ctx context.Context, i int) outcome {
	return createAt(r.client, target{url: r.shape.apiURL + "/v1/tickets", key: r.key, wantStatus: nethttp.StatusCreated}, bodies)
}

// caughtUp waits until ClickHouse has want tickets and the receiver want
// deliveries, and returns how long that took.
func (r *capacityRun) caughtUp(ctx context.Context, want int64) (float64, error) {
	start := time.Now()
	if _, have, err := settle(ctx, r.env.ch, r.env.chDB, uint64(want), r.b.o.settleTimeout); err != nil || have < uint64(want) {
		return 0, fmt.Errorf("capacity: %d of %d tickets projected: %v", have, want, err)
	}
	for r.hooks.requests.Load() < want {
		if time.Since(start) > r.b.o.settleTimeout {
			return 0, fmt.Errorf("capacity: %d of %d webhook deliveries after %s", r.hooks.requests.Load(), want, r.b.o.settleTimeout)
		}
		if !poll.Sleep(ctx, 50*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return round3(time.Since(start).Seconds()), nil
}

func (r *capacityRun) events(ctx context.Context) (int64, error) {
	s, err := r.env.pg.queryString(ctx, "SELECT count(*)::text FROM events")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

func (r *capacityRun) ticketIDs(ctx context.Context, n int) ([]string, error) {
	rows, err := r.env.pg.queryRows(ctx, "SELECT id::text FROM streams WHERE type = 'ticket' LIMIT $1", n)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(rows))
	for _, row := range rows {
		ids = append(ids, fmt.Sprint(row[0]))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("capacity: no tickets to read")
	}
	return ids, nil
}

// cpuReading is the CPU ticks of every process of capacityProcs at one
// moment.
type cpuReading struct {
	at    time.Time
	ticks map[string]uint64
}

// cpuSpan is the CPU ticks every process used between two readings.
type cpuSpan struct {
	seconds float64
	ticks   map[string]uint64
}

func (r *capacityRun) cpu() cpuReading {
	snap := r.b.procs.snap()
	out := cpuReading{at: snap.at, ticks: map[string]uint64{"postgres": snap.pg, "clickhouse": snap.ch}}
	for name, pid := range r.shape.pids() {
		if st, ok := readProcStat(pid); ok {
			out.ticks[name] = st.self
		}
	}
	return out
}

func (c cpuReading) since(before cpuReading) cpuSpan {
	s := cpuSpan{seconds: c.at.Sub(before.at).Seconds(), ticks: map[string]uint64{}}
	for name, t := range c.ticks {
		s.ticks[name] = t - min(t, before.ticks[name])
	}
	return s
}

// pct is each process's CPU over the span in percent of one core.
func (s cpuSpan) pct() map[string]float64 {
	out := map[string]float64{}
	for name, t := range s.ticks {
		out[name] = round1(float64(t) / clockTicks / s.seconds * 100)
	}
	return out
}

// msPerOp is each process's CPU over the span beyond its idle share
// (idle's rate over as long), in ms per operation.
func (s cpuSpan) msPerOp(idle cpuSpan, ops int64) map[string]float64 {
	out := map[string]float64{}
	if ops <= 0 {
		return out
	}
	for name, t := range s.ticks {
		ms := float64(t) / clockTicks * 1000
		if idle.seconds > 0 {
			ms -= float64(idle.ticks[name]) / clockTicks * 1000 / idle.seconds * s.seconds
		}
		out[name] = round3(max(ms, 0) / float64(ops))
	}
	return out
}

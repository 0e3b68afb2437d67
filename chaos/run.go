package chaos

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The phases of a run, in order: each fault is one.
const (
	phaseSteady = iota
	phaseKills
	phaseBroker
	phaseClickHouse
	phasePostgres
	phaseAfter
	phaseCount
)

var phaseNames = [phaseCount]string{"steady load", "kill -9 of a random role", "broker stopped", "ClickHouse stopped", "Postgres restarted (fast)", "after the faults"}

// subscribedTypes are the event types the run's webhook subscribes to.
//
// Not ticket.updated: the linearizability clients' PATCHes would be most
// of them, and one webhook gets at most 4 deliveries at a time, so the
// receiver's hangs would make the backlog outgrow the run.
var subscribedTypes = []string{"ticket.created", "ticket.message_added", "customer.created"}

// recovery is how long one fault took to recover from, from the moment it
// was removed (a killed process restarted, a server started again): until
// the process answered, and until a ticket created then was in ClickHouse.
type recovery struct {
	What     string
	Ready    time.Duration
	CaughtUp time.Duration
}

// run is the state of one run.
type run struct {
	cfg      Config
	logf     func(format string, args ...any)
	log      io.Writer
	servers  servers
	broker   *proc
	roles    []*proc // api1, api2, relay, projector, dispatcher
	receiver *receiver
	avail    *availability
	ledger   *ledger
	api      *apiClient
	ch       driver.Conn

	workspace string
	webhook   string

	phase      atomic.Int32
	phaseMu    sync.Mutex
	phaseStart [phaseCount]time.Time
	recoveries [phaseCount][]recovery
	failures   []string
}

func (r *run) phaseOf() int { return int(r.phase.Load()) }

func (r *run) setPhase(p int) {
	r.phaseMu.Lock()
	r.phaseStart[p] = time.Now()
	r.phaseMu.Unlock()
	r.phase.Store(int32(p))
	r.logf("phase: %s", phaseNames[p])
}

// phaseAt is the phase that was running at t.
func (r *run) phaseAt(t time.Time) int {
	r.phaseMu.Lock()
	defer r.phaseMu.Unlock()
	p := 0
	for i := range phaseCount {
		if !r.phaseStart[i].IsZero() && !t.Before(r.phaseStart[i]) {
			p = i
		}
	}
	return p
}

func (r *run) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.failures = append(r.failures, msg)
	r.logf("FAIL: %s", msg)
}

// Run runs the suite as cfg says and returns its report; the report's
// Failures name every loss, duplicate, missing delivery, unexcused API
// failure and non-linearizable history. The error is for a run that could
// not be carried out (a server that did not start, say). Every process and
// server it started is stopped when it returns, whatever happened.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := freshWorkDir(cfg.WorkDir); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(cfg.WorkDir, "harness.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	var logMu sync.Mutex
	started := time.Now()
	r := &run{cfg: cfg, log: logFile, avail: &availability{}, ledger: &ledger{}}
	r.logf = func(format string, args ...any) {
		line := fmt.Sprintf("[%6.1fs] ", time.Since(started).Seconds()) + fmt.Sprintf(format, args...) + "\n"
		logMu.Lock()
		defer logMu.Unlock()
		io.WriteString(logFile, line) //nolint:errcheck // the log is best effort
		if cfg.Out != nil {
			io.WriteString(cfg.Out, line) //nolint:errcheck // as is the progress
		}
	}
	r.servers = servers{script: cfg.Services, profile: cfg.Profile, log: logFile}
	r.phaseStart[phaseSteady] = started

	defer r.shutdown()
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	report, err := r.exercise(ctx)
	if err != nil {
		return nil, err
	}
	return report, nil
}

// shutdown stops every process, the receiver and the servers.
func (r *run) shutdown() {
	var wg sync.WaitGroup
	for _, p := range append(append([]*proc(nil), r.roles...), r.broker) {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.close() }()
	}
	wg.Wait()
	if r.receiver != nil && r.receiver.server != nil {
		r.receiver.close()
	}
	if r.ch != nil {
		r.ch.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := r.servers.stop(ctx); err != nil {
		r.logf("stop the servers: %v", err)
	}
}

func (r *run) port(i int) string { return fmt.Sprintf("127.0.0.1:%d", r.cfg.BasePort+i) }

// env is the environment of every helpdeskflow process.
func (r *run) env(secretKeys string, extra ...string) []string {
	return append(append(withoutHDF(r.cfg.Environ),
		"HDF_POSTGRES_URL="+r.cfg.PostgresURL,
		"HDF_CLICKHOUSE_ADDR="+r.cfg.ClickHouseAddr,
		"HDF_CLICKHOUSE_DATABASE="+r.cfg.ClickHouseDatabase,
		"HDF_KAFKA_BROKERS="+r.port(10),
		"HDF_SECRET_KEYS="+secretKeys,
		"HDF_OUTBOUND_ALLOW_LOOPBACK=true",
		"HDF_WEBHOOK_BACKOFF=1s",
		"HDF_WEBHOOK_BACKOFF_FACTOR=2",
		"HDF_POSTGRES_MAX_CONNS=16",
		"HDF_LOG_LEVEL=warn",
	), extra...)
}

// setUp starts the servers and every process, creates the workspace, the
// webhook and the receiver.
func (r *run) setUp(ctx context.Context) error {
	cfg := r.cfg
	r.logf("starting Postgres and ClickHouse (services.sh %s, fresh data)", cfg.Profile)
	if err := r.servers.clean(ctx); err != nil {
		return &ServersError{err}
	}
	if err := r.servers.start(ctx); err != nil {
		return &ServersError{err}
	}
	keyBytes := make([]byte, 32)
	crand.Read(keyBytes) //nolint:errcheck // crypto/rand.Read does not fail
	secretKeys := "chaos1:" + base64.StdEncoding.EncodeToString(keyBytes)
	env := r.env(secretKeys)
	if out, err := r.command(ctx, env, "migrate"); err != nil {
		return fmt.Errorf("helpdeskflow migrate: %w: %s", err, out)
	}
	out, err := r.command(ctx, env, "workspace", "create", "chaos")
	if err != nil {
		return fmt.Errorf("helpdeskflow workspace create: %w: %s", err, out)
	}
	var key string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			switch k {
			case "workspace_id":
				r.workspace = strings.TrimSpace(v)
			case "admin_key":
				key = strings.TrimSpace(v)
			}
		}
	}
	if r.workspace == "" || key == "" {
		return fmt.Errorf("workspace create printed no workspace id and key")
	}

	newProc := func(name string, addr, health string, args []string, env []string) (*proc, error) {
		f, err := os.OpenFile(filepath.Join(cfg.WorkDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		return &proc{name: name, bin: cfg.Binary, args: args, env: env, addr: addr, health: health, log: f, logf: r.logf}, nil
	}
	r.broker, err = newProc("broker", r.port(10), "", []string{"broker", "--kafka-port", fmt.Sprint(cfg.BasePort + 10)},
		append(withoutHDF(cfg.Environ), "HDF_DATA_DIR="+filepath.Join(cfg.WorkDir, "broker"), "HDF_LOG_LEVEL=warn"))
	if err != nil {
		return err
	}
	if err := r.broker.start(); err != nil {
		return err
	}
	if err := r.broker.waitUp(ctx, time.Minute); err != nil {
		return err
	}
	for i, role := range []string{"api", "api", "relay", "projector", "dispatcher"} {
		name, instance := role, role+"-1"
		if role == "api" {
			name, instance = fmt.Sprintf("api%d", i+1), fmt.Sprintf("api-%d", i+1)
		}
		// A stable instance id, as a supervisor or the pod name gives it:
		// a restarted consumer is a static member that replaces its killed
		// predecessor in the Kafka group at once.
		p, err := newProc(name, r.port(i), "/healthz", []string{"serve"},
			r.env(secretKeys, "HDF_ROLES="+role, "HDF_HTTP_ADDR="+r.port(i), "HDF_METRICS_ADDR="+r.port(i+5), "HDF_INSTANCE_ID="+instance))
		if err != nil {
			return err
		}
		r.roles = append(r.roles, p)
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, p := range r.roles {
		if err := p.waitUp(ctx, 2*time.Minute); err != nil {
			return err
		}
	}
	r.logf("running: broker %s, api1 %s, api2 %s, relay, projector, dispatcher", r.port(10), r.port(0), r.port(1))

	r.receiver = &receiver{failRate: 0.30, hangRate: 0.05, hang: 10 * time.Second}
	if err := r.receiver.listen(r.port(11)); err != nil {
		return fmt.Errorf("webhook receiver: %w", err)
	}
	r.api = newAPIClient([]string{"http://" + r.port(0), "http://" + r.port(1)}, key, r.avail, r.phaseOf)
	limits := map[string]any{}
	for _, c := range []string{"tickets.create", "tickets.update", "tickets.read", "customers.write", "customers.read"} {
		limits[c] = map[string]int{"limit": 1_000_000, "window_seconds": 60}
	}
	if a := r.api.do(ctx, 0, "PUT", "/v1/rate-limits", map[string]any{"limits": limits}, nil); a.Status != 200 {
		return fmt.Errorf("PUT /v1/rate-limits: %d %v %.300s", a.Status, a.Err, a.Body)
	}
	a := r.api.do(ctx, 0, "POST", "/v1/webhooks", map[string]any{"url": "http://" + r.port(11) + "/hook", "event_types": subscribedTypes}, nil)
	if a.Status != 201 {
		return fmt.Errorf("POST /v1/webhooks: %d %v %.300s", a.Status, a.Err, a.Body)
	}
	var hook struct{ ID string }
	if err := json.Unmarshal(a.Body, &hook); err != nil || hook.ID == "" {
		return fmt.Errorf("POST /v1/webhooks answered %.300s", a.Body)
	}
	r.webhook = hook.ID
	r.ch, err = openClickHouse(cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	return err
}

// command runs the binary with args and returns its standard output.
func (r *run) command(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.cfg.Binary, args...)
	cmd.Env = env
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, r.log
	err := cmd.Run()
	return stdout.Bytes(), err
}

// exercise runs the load through the faults, waits for the system to
// catch up and checks it.
func (r *run) exercise(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	l := &load{api: r.api, ledger: r.ledger, phaseOf: r.phaseOf}
	h := &histories{api: r.api, phaseOf: r.phaseOf, start: time.Now()}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.run(loadCtx, cfg.LoadWorkers, cfg.LoadPause) }()
	go func() {
		defer wg.Done()
		h.run(loadCtx, cfg.HistoryGroups, cfg.HistoryClients, cfg.HistoryWindow, cfg.HistoryPause)
	}()

	sleep(ctx, cfg.Warmup)
	// The base backup runs under the load, during the kills.
	backupDone := make(chan error, 1)
	go func() { backupDone <- r.servers.backup(ctx) }()
	if err := r.faults(ctx); err != nil {
		stopLoad()
		wg.Wait()
		return nil, err
	}
	if err := <-backupDone; err != nil {
		stopLoad()
		wg.Wait()
		return nil, err
	}
	r.setPhase(phaseAfter)
	sleep(ctx, cfg.Cooldown)
	stopLoad()
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r.logf("load stopped; waiting for the projector and the webhook deliveries to catch up")
	return r.check(ctx, h)
}

// faults injects every fault in turn, each its own phase.
func (r *run) faults(ctx context.Context) error {
	cfg := r.cfg
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

	r.setPhase(phaseKills)
	var probes sync.WaitGroup
	var probeMu sync.Mutex
	var probeErr error
	for i := range cfg.KillCycles {
		sleep(ctx, cfg.KillEvery)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n := rng.IntN(len(r.roles))
		p := r.roles[n]
		t0 := time.Now()
		p.kill9()
		if err := p.start(); err != nil {
			return err
		}
		if err := p.waitUp(ctx, 2*time.Minute); err != nil {
			return err
		}
		ready := time.Since(t0)
		if n < 2 { // an API process: its requests may fail until now
			r.avail.markDown(n, t0, time.Now())
		}
		// The next kill does not wait for the catch-up: the probes of
		// successive kills overlap.
		r.logf("kill -9 %d/%d: %s ready after %s", i+1, cfg.KillCycles, p.name, ready.Round(time.Millisecond))
		probes.Add(1)
		go func() {
			defer probes.Done()
			caught, err := r.probe(ctx, t0)
			probeMu.Lock()
			defer probeMu.Unlock()
			if err != nil {
				probeErr = errors.Join(probeErr, err)
				return
			}
			r.recoveries[phaseKills] = append(r.recoveries[phaseKills], recovery{What: p.name, Ready: ready, CaughtUp: caught})
		}()
	}
	probes.Wait()
	if probeErr != nil {
		return probeErr
	}

	r.setPhase(phaseBroker)
	r.broker.stop()
	sleep(ctx, cfg.Outage)
	t0 := time.Now()
	if err := r.broker.start(); err != nil {
		return err
	}
	if err := r.recover(ctx, phaseBroker, "broker", t0, r.broker); err != nil {
		return err
	}

	r.setPhase(phaseClickHouse)
	if err := r.servers.stopClickHouse(ctx); err != nil {
		return err
	}
	sleep(ctx, cfg.Outage)
	t0 = time.Now()
	if err := r.servers.start(ctx); err != nil {
		return err
	}
	if err := r.recover(ctx, phaseClickHouse, "ClickHouse", t0, nil); err != nil {
		return err
	}

	r.setPhase(phasePostgres)
	t0 = time.Now()
	if err := r.servers.restartPostgres(ctx); err != nil {
		return err
	}
	// Every process may fail while Postgres restarts, and until its pool
	// has replaced the connections the restart closed.
	r.avail.markDown(-1, t0, time.Now().Add(5*time.Second))
	return r.recover(ctx, phasePostgres, "Postgres", t0, nil)
}

// recover measures one fault's recovery from t0, when it was removed.
func (r *run) recover(ctx context.Context, phase int, what string, t0 time.Time, p *proc) error {
	if p != nil {
		if err := p.waitUp(ctx, 2*time.Minute); err != nil {
			return err
		}
	}
	ready := time.Since(t0)
	caught, err := r.probe(ctx, t0)
	if err != nil {
		return err
	}
	r.logf("%s: back after %s, caught up after %s", what, ready.Round(time.Millisecond), caughtString(caught))
	r.recoveries[phase] = append(r.recoveries[phase], recovery{What: what, Ready: ready, CaughtUp: caught})
	return nil
}

// notCaughtUp is the catch-up time of a probe that did not reach
// ClickHouse within probeLimit; the checks at the end tell what is missing.
const notCaughtUp = time.Duration(-1)

// probeLimit bounds one probe.
const probeLimit = 3 * time.Minute

// probe creates a ticket (retrying with its Idempotency-Key until it is
// acknowledged) and waits until it is in ClickHouse; it returns the time
// from t0 until then, or notCaughtUp after probeLimit. The error is for a
// probe the API did not acknowledge within probeLimit.
func (r *run) probe(ctx context.Context, t0 time.Time) (time.Duration, error) {
	token := newToken()
	w := write{Token: token, Kind: writeCreate, Phase: r.phaseOf(), Outcome: outcomeUnknown}
	defer func() { r.ledger.add(w) }()
	body := map[string]any{"subject": "probe " + token, "customer": map[string]string{"email": "probe@example.com"},
		"message": map[string]string{"body": "probe"}}
	deadline := time.Now().Add(probeLimit)
	var id string
	for i := 0; id == ""; i++ {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("the probe ticket was not acknowledged within 3 minutes")
		}
		a := r.api.do(ctx, i%2, "POST", "/v1/tickets", body, map[string]string{"Idempotency-Key": token})
		if a.Status == 201 {
			t, err := decodeTicket(a.Body)
			if err != nil {
				return 0, err
			}
			id, w.Outcome = t.ID, outcomeOK
			break
		}
		sleep(ctx, 100*time.Millisecond)
	}
	for {
		var n uint64
		err := r.ch.QueryRow(ctx, `SELECT count() FROM tickets FINAL WHERE workspace_id = toUUID(?) AND ticket_id = toUUID(?)`, r.workspace, id).Scan(&n)
		if err == nil && n > 0 {
			return time.Since(t0), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Now().After(deadline) {
			r.logf("the probe ticket %s did not reach ClickHouse within %s (last error: %v)", id, probeLimit, err)
			return notCaughtUp, nil
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// catchUp waits until ClickHouse has every event of the workspace and no
// delivery of the webhook is pending, or CatchUp passes.
func (r *run) catchUp(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(r.cfg.CatchUp)
	for {
		events, err := loadEvents(ctx, r.cfg.PostgresURL, r.workspace)
		if err != nil {
			return 0, err
		}
		projected, perr := projectedEvents(ctx, r.ch, r.workspace)
		deliveries, derr := loadDeliveries(ctx, r.cfg.PostgresURL, r.webhook)
		if perr == nil && derr == nil {
			missing, pending := 0, 0
			subscribed := 0
			for _, e := range events {
				if projected[e.ID] == 0 {
					missing++
				}
				if isSubscribed(e.Type) {
					subscribed++
				}
			}
			for _, d := range deliveries {
				if d.Status == "pending" {
					pending++
				}
			}
			if missing == 0 && pending == 0 && len(deliveries) >= subscribed {
				return time.Since(start), nil
			}
			if time.Now().After(deadline) {
				r.logf("not caught up after %s: %d events not in ClickHouse, %d deliveries pending, %d of %d recorded",
					r.cfg.CatchUp, missing, pending, len(deliveries), subscribed)
				return time.Since(start), nil
			}
		} else if time.Now().After(deadline) {
			return 0, errors.Join(perr, derr)
		}
		sleep(ctx, time.Second)
	}
}

func isSubscribed(eventType string) bool {
	for _, t := range subscribedTypes {
		if t == eventType {
			return true
		}
	}
	return false
}

func caughtString(d time.Duration) string {
	if d == notCaughtUp {
		return "more than " + probeLimit.String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// freshWorkDir creates dir, or empties it of what an earlier run left: the
// broker's data (its topics and consumer offsets belong to the deleted
// databases), the logs, the summary and the visualisations.
func freshWorkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(dir, "broker")); err != nil {
		return err
	}
	for _, pattern := range []string{"*.log", "summary.md", "linearizability-*.html"} {
		old, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

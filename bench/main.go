// Command bench is `make bench`: the end-to-end benchmark of HelpDeskFlow.
//
// It builds the binary, gives it a fresh Postgres database and a fresh
// ClickHouse database on the servers named by HDF_POSTGRES_URL and
// HDF_CLICKHOUSE_ADDR, runs `helpdeskflow dev` (every role and the embedded
// Kafka broker in one process) and measures, in one run:
//
//   - ticket creates per second over HTTP (POST /v1/tickets) at each
//     concurrency, with client-side p50/p99 latency and the sustained rate
//     (creates ÷ (window + the time until the projection caught up));
//   - the projection lag: from the 201 to the ticket being visible in the
//     ClickHouse read model, at a steady moderate rate and under load;
//   - integrators' traffic at -mix-concurrency (creates for new and known
//     customers, PATCHes and messages on the phase's tickets, half with an
//     Idempotency-Key), per request kind, beside the pure creates;
//   - creates sent on a schedule (open loop) at 2,000/s and at half the
//     c=64 rate (or of -paced-rate), with the projection lag and the dev
//     process's peak RSS;
//   - ticket creates through POST /v1/batch/tickets, 100 per batch at
//     c=16, against single creates at c=16 (skipped while it answers 404);
//   - the dev process's memory (VmRSS, VmHWM) and the CPU split between the
//     dev process, Postgres, ClickHouse and the load generator;
//   - composite reads per second (GET /v1/tickets/{id} of 1,000 tickets with
//     50 messages, through the read cache checked against the event store,
//     with 5% writes to the same tickets) at each concurrency, against a
//     static handler in this process serving a body of the same size;
//   - ticket creates per second at -automation-concurrency with 100 active
//     automation rules (POST /v1/automations) against none, each in fresh
//     workspaces (`helpdeskflow workspace create`), and their ratio;
//   - webhook deliveries per second through the delivery pipeline (the
//     Postgres queue, pollers.DeliveryWorker, webhook.Sender; in this
//     process, on a database of its own) to a local receiver, against a
//     plain net/http client posting the same bodies, and their ratio;
//   - list queries (GET /v1/tickets with a mix of filters and next_cursor
//     pages) against a million ticket rows inserted straight into the
//     ClickHouse read model, at each -list-concurrency, per query kind;
//   - messages imported per second from a Gmail mailbox of -mail-messages
//     messages (a gmailtest fake, threads of 1–4 messages) through the
//     whole import pipeline (mailsync.Worker: list, fetch raw, mail.Parse,
//     tickets.Service.ImportMail; in this process, on a database of its
//     own), against the same tickets and messages made by CreateTicket and
//     AddMessage directly, and their ratio (no target), with the rate of
//     fetching and parsing alone;
//   - projection rebuilds (`helpdeskflow projections rebuild`, in this
//     process): events per second rebuilt from a Postgres store of
//     2,000,000 events seeded by SQL (database bench_rebuild_store_v1, kept
//     and reused across runs) into a fresh ClickHouse database, against
//     ClickHouse's own bulk insert of the same rows, and their ratio (three
//     rounds, the median ratio reported);
//   - two baselines on the same machine: pgbench doing one INSERT + COMMIT
//     per transaction against the same Postgres server, and an empty
//     net/http handler hit by the same load generator.
//
// It prints a table and writes <out>/results.json and <out>/summary.md. The
// targets (creates/s at c=64 ≥ 0.25 × pgbench tps at c=64 of the same run,
// counting only 201s; create p99 < 25 ms at c=16 and < 5 ms at c=1, over
// every request, failed ones included; projection lag p99 < 1 s and dev RSS
// < 200 MB at each paced rate; batch items/s ≥ 3 × single creates/s at
// c=16; creates/s with 100 rules ≥ 0.85 × without, webhook deliveries/s
// ≥ 0.50 × a plain client's requests/s, composite reads/s at c=64 ≥ 0.5 ×
// the static handler's, composite read p99 < 10 ms at c=16, list p99 <
// 200 ms, rebuild events/s ≥ 0.5 × the bulk insert's) are reported as pass/miss; missing one
// never fails the run; the mail ratio is reported without a target. -phases
// runs a subset (creates, mix, paced, batch, automations, webhooks, reads,
// baselines, list, mail, rebuild).
//
//	eval "$(scripts/services.sh env bench)" && go run ./bench -out bench-results -duration 10s
//	eval "$(scripts/services.sh env bench)" && go run ./bench -phases reads,list,baselines
//	eval "$(scripts/services.sh env bench)" && go run ./bench -phases mail -mail-messages 10000
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration       time.Duration
	warmup         time.Duration
	out            string
	concurrency    []int
	keep           bool
	lagSamples     int
	lagRate        float64
	lagConcurrency int
	settleTimeout  time.Duration
	pgbench        string

	phases          phaseSet
	listTickets     int
	listConcurrency []int
	listDuration    time.Duration

	automationConcurrency int
	mixConcurrency        int
	pacedRate             float64
	webhookDeliveries     int
	mailMessages          int
	capacityRate          float64
	capacityReadRate      float64
}

// The phases -phases selects from, in the order they run.
const (
	phaseCreates     = "creates"     // projection lag, then POST /v1/tickets at each -concurrency
	phaseMix         = "mix"         // integrators' traffic (creates for new and known customers, PATCHes, messages, Idempotency-Keys) at -mix-concurrency
	phasePaced       = "paced"       // POST /v1/tickets sent on a schedule (open loop) at 2,000/s and at half the maximum
	phaseBatch       = "batch"       // POST /v1/batch/tickets, 100 items per batch, at c=16
	phaseAutomations = "automations" // POST /v1/tickets at -automation-concurrency with 100 rules and with none
	phaseWebhooks    = "webhooks"    // -webhook-deliveries through the delivery pipeline against a plain net/http client
	phaseReads       = "reads"       // GET /v1/tickets/{id} of 1,000 50-message tickets (5% writes) and a static handler at each -concurrency
	phaseBaselines   = "baselines"   // pgbench and the empty handler at each -concurrency
	phaseList        = "list"        // GET /v1/tickets over -list-tickets seeded rows at each -list-concurrency
	phaseMail        = "mail"        // -mail-messages imported from a fake Gmail mailbox by mailsync against direct commands
	phaseRebuild     = "rebuild"     // projections rebuild of a SQL-seeded store of 2,000,000 events against ClickHouse's bulk insert of the same rows
	phaseAnalytics   = "analytics"   // each query of docs/analytics.md, 3 runs, on a SQL-seeded history of 1,000,000 tickets projected by the projector's fold (not in the default list: make bench-analytics)
	phaseCapacity    = "capacity"    // the production shape (a process per role), CPU per create, per read and per delivery of each at -capacity-rate
)

var allPhases = []string{phaseCreates, phaseMix, phasePaced, phaseBatch, phaseAutomations, phaseWebhooks, phaseReads, phaseBaselines, phaseList, phaseMail, phaseRebuild, phaseAnalytics, phaseCapacity}

// defaultPhases are the phases run when -phases is not given: all but the
// analytics phase, whose first run seeds and projects a million tickets
// (make bench-analytics runs it).
var defaultPhases = slices.DeleteFunc(slices.Clone(allPhases), func(p string) bool { return p == phaseAnalytics })

// phaseSet is the phases to run.
type phaseSet []string

func (p phaseSet) has(name string) bool { return slices.Contains(p, name) }

func parsePhases(s string) (phaseSet, error) {
	var out phaseSet
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(allPhases, f) {
			return nil, fmt.Errorf("-phases: unknown phase %q; phases are %s", f, strings.Join(allPhases, ","))
		}
		if !out.has(f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-phases: no phase given")
	}
	return out, nil
}

func main() {
	var o options
	var conc, listConc, phases, cpuProfile string
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each load phase")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each HTTP load phase (not measured)")
	flag.StringVar(&o.out, "out", "bench-results", "directory for results.json, summary.md and logs")
	flag.StringVar(&conc, "concurrency", "1,16,64", "comma-separated concurrency levels")
	flag.BoolVar(&o.keep, "keep", false, "keep the Postgres and ClickHouse databases (and the temp dir) afterwards")
	flag.IntVar(&o.lagSamples, "lag-samples", 200, "creates sampled for projection lag, in each lag measurement")
	flag.Float64Var(&o.lagRate, "lag-rate", 50, "creates per second of the steady-rate projection lag phase")
	flag.IntVar(&o.lagConcurrency, "lag-concurrency", 16, "concurrency of the create phase that also samples projection lag under load")
	flag.DurationVar(&o.settleTimeout, "settle-timeout", 120*time.Second, "how long to wait for the projection to catch up after a phase")
	flag.StringVar(&o.pgbench, "pgbench", "/usr/lib/postgresql/15/bin/pgbench", "pgbench binary (falls back to pgbench on PATH)")
	flag.StringVar(&phases, "phases", strings.Join(defaultPhases, ","), "comma-separated phases to run: "+strings.Join(allPhases, ", ")+" (baselines give the ratios)")
	flag.IntVar(&o.listTickets, "list-tickets", 1_000_000, "ticket rows the list phase inserts into the ClickHouse read model")
	flag.StringVar(&listConc, "list-concurrency", "1,16", "comma-separated concurrency levels of the list phase")
	flag.DurationVar(&o.listDuration, "list-duration", 20*time.Second, "measured duration of each list level (its queries take seconds; only the first level warms up)")
	flag.IntVar(&o.automationConcurrency, "automation-concurrency", 16, "concurrency of the automations phase (4 rounds of -duration/2 each, after -warmup)")
	flag.IntVar(&o.mixConcurrency, "mix-concurrency", 16, "concurrency of the mix phase")
	flag.Float64Var(&o.pacedRate, "paced-rate", 0, "maximum creates/s the paced phase takes half of when the creates phase did not run at c=64 (0: that level is skipped)")
	flag.IntVar(&o.webhookDeliveries, "webhook-deliveries", 100_000, "deliveries of each pipeline round of the webhooks phase (2 rounds; the plain client's 2 rounds last at least -duration/2 each)")
	flag.IntVar(&o.mailMessages, "mail-messages", mailDefaultMessages, "messages of the mail phase's fake Gmail mailbox, imported in each of its 4 rounds (2 through the mail sync, 2 by direct commands)")
	flag.Float64Var(&o.capacityRate, "capacity-rate", 500, "creates/s of the capacity phase (well below saturation: every process's CPU per create is measured)")
	flag.Float64Var(&o.capacityReadRate, "capacity-read-rate", 1000, "composite reads/s of the capacity phase")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (load generators, receivers and in-process workers) to this file")
	flag.Parse()

	var err error
	if o.concurrency, err = parseConcurrency(conc); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if o.listConcurrency, err = parseConcurrency(listConc); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -list-concurrency:", strings.TrimPrefix(err.Error(), "-concurrency: "))
		os.Exit(2)
	}
	if o.phases, err = parsePhases(phases); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if o.duration <= 0 || o.duration > time.Hour || o.warmup < 0 || o.lagSamples < 1 || o.lagRate <= 0 || o.listTickets < 1000 || o.listTickets > 100_000_000 ||
		o.listDuration <= 0 || o.listDuration > time.Hour || o.automationConcurrency < 1 || o.automationConcurrency > 1024 ||
		o.mixConcurrency < 1 || o.mixConcurrency > 1024 || o.pacedRate < 0 || o.capacityRate <= 0 || o.capacityRate > 10_000 || o.capacityReadRate <= 0 || o.capacityReadRate > 50_000 ||
		o.webhookDeliveries < 1000 || o.webhookDeliveries > 1_000_000 || o.mailMessages < mailMinMessages || o.mailMessages > mailMaxMessages {
		fmt.Fprintf(os.Stderr, "bench: -duration and -list-duration must be in (0, 1h], -warmup ≥ 0, -lag-samples ≥ 1, -lag-rate > 0, -list-tickets in [1000, 1e8], -automation-concurrency and -mix-concurrency in 1..1024, -paced-rate ≥ 0, -capacity-rate in (0, 10000], -capacity-read-rate in (0, 50000], -webhook-deliveries in [1000, 1e6], -mail-messages in [%d, %d]\n",
			mailMinMessages, mailMaxMessages)
		os.Exit(2)
	}

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -cpuprofile:", err)
			os.Exit(2)
		}
		defer f.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	pprof.StopCPUProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseConcurrency(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("-concurrency: %q is not a number in 1..1024", f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-concurrency: no levels given")
	}
	return out, nil
}

// run is the whole benchmark. Everything it creates (temp dir, databases,
// the dev process) is cleaned up by deferred calls, whatever happens; the
// results gathered so far are written even when a phase fails.
func run(ctx context.Context, o options) (err error) {
	pgURL := os.Getenv("HDF_POSTGRES_URL")
	chAddr := os.Getenv("HDF_CLICKHOUSE_ADDR")
	if pgURL == "" || chAddr == "" {
		return errors.New(`HDF_POSTGRES_URL and HDF_CLICKHOUSE_ADDR must be set: scripts/services.sh start bench, then eval "$(scripts/services.sh env bench)"`)
	}
	if err := loopbackOnly(pgURL, chAddr); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", o.out, err)
	}

	res := newResults(o)
	defer func() {
		if err != nil {
			res.Error = err.Error()
		}
		if werr := res.write(o.out); werr != nil {
			err = errors.Join(err, werr)
		}
	}()

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "hdf-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep {
			logf("kept temp dir %s", tmp)
			return
		}
		if rerr := os.RemoveAll(tmp); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()

	res.Config.SourceTreeSHA256 = sourceTreeHash(root)
	logf("building helpdeskflow")
	bin := filepath.Join(tmp, "helpdeskflow")
	if err := buildBinary(ctx, root, bin); err != nil {
		return err
	}

	name := randomName("bench_")
	res.Databases = databaseNames{Postgres: name, ClickHouse: name}
	env, err := newPhaseEnv(ctx, envConfig{postgresURL: pgURL, name: name, keep: o.keep, dev: &devConfig{
		bin: bin, dir: root, tmp: tmp, clickHouseAddr: chAddr,
		stderrPath: filepath.Join(o.out, "dev-stderr.log"),
	}})
	if err != nil {
		return err
	}
	defer env.closeInto(&err)
	res.Postgres = env.pg.describe(ctx)
	res.ClickHouseVersion = clickHouseVersion(ctx, env.ch)

	b := &bench{
		o: o, res: res, phaseEnv: env, tmp: tmp,
		procs: newProcWatch(env.dev.pid, env.pg.port, env.chOpts.Addr[0]),
	}
	if err := b.runPhases(ctx); err != nil {
		return err
	}

	logf("stopping dev with SIGTERM")
	stopErr := env.dev.stop(30 * time.Second)
	res.Shutdown = env.dev.shutdown
	res.finish()
	res.print(os.Stdout)
	if stopErr != nil {
		return stopErr
	}
	return ctx.Err()
}

// loopbackOnly refuses to send traffic anywhere but this machine.
func loopbackOnly(pgURL, chAddr string) error {
	u, err := url.Parse(pgURL)
	if err != nil {
		return fmt.Errorf("HDF_POSTGRES_URL: %w", err)
	}
	if !isLoopback(u.Hostname()) {
		return fmt.Errorf("HDF_POSTGRES_URL host %q is not 127.0.0.1/localhost; the benchmark only runs against local services", u.Hostname())
	}
	host := chAddr
	if strings.Contains(chAddr, "://") {
		cu, err := url.Parse(chAddr)
		if err != nil {
			return fmt.Errorf("HDF_CLICKHOUSE_ADDR: %w", err)
		}
		host = cu.Host
	}
	if h, _, err := splitHostPort(host); err != nil || !isLoopback(h) {
		return fmt.Errorf("HDF_CLICKHOUSE_ADDR %q is not a 127.0.0.1 address; the benchmark only runs against local services", chAddr)
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "127.0.0.1" || host == "localhost" || host == "::1"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func splitHostPort(hostport string) (string, int, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return h, port, err
}

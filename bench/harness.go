package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/store/connections"
	mailrooms "github.com/helpdeskflow/helpdeskflow/store/mail"
	"github.com/helpdeskflow/helpdeskflow/store/outbound"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// The harness: every phase runs in a phaseEnv, which newPhaseEnv sets up
// and close tears down. There are two kinds, by envConfig.dev:
//
//   - dev: `helpdeskflow dev` as a child process (every role and the
//     embedded Kafka broker) on a fresh Postgres database and a ClickHouse
//     database of the same name, which it migrates itself. The run has one,
//     which the creates, automations, reads, baselines and list phases
//     share (the bench type embeds it).
//   - in process: a fresh Postgres database migrated here, on which the
//     phase runs HelpDeskFlow's packages in the bench process
//     (openService). The webhooks and mail phases each have one of their
//     own (inProcessEnv), since dev runs a delivery worker and a mail sync
//     of its own on the run's database, which would compete with theirs.

// envConfig is what differs between environments.
type envConfig struct {
	postgresURL string     // the Postgres server (HDF_POSTGRES_URL)
	name        string     // the Postgres database to create; with dev, the ClickHouse database's name too
	keep        bool       // -keep: leave the databases behind
	dev         *devConfig // run `helpdeskflow dev` on the databases; nil: the phase's code runs in this process
}

// phaseEnv is a phase's environment: its databases and the HelpDeskFlow
// code serving them. It is not safe for concurrent setup or teardown.
type phaseEnv struct {
	cfg envConfig
	pg  *pgDatabase

	// With dev: the process, and the ClickHouse database it projects into
	// with a connection to it.
	dev    *devProcess
	chOpts *clickhouse.Options
	chDB   string
	ch     driver.Conn

	// In process: what the phase's services share.
	keys   *secretbox.Keyring // one key, "bench1"
	logger *slog.Logger       // warnings and errors, to stderr
}

// benchActor is the metadata of what the harness does itself (creating
// workspaces) and of the webhooks phase's commands.
var benchActor = helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem, ID: "bench"},
	Channel: helpdeskflow.ChannelSystem}

// newPhaseEnv creates the Postgres database, then with cfg.dev starts dev
// on it and on the ClickHouse database and waits until dev answers
// /readyz, or without it migrates the database and makes the keyring and
// logger. On an error it tears down what it had set up.
func newPhaseEnv(ctx context.Context, cfg envConfig) (_ *phaseEnv, err error) {
	e := &phaseEnv{cfg: cfg}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.close())
		}
	}()
	if e.pg, err = createPostgresDatabase(ctx, cfg.postgresURL, cfg.name); err != nil {
		return nil, err
	}
	if cfg.dev == nil {
		err = e.prepareInProcess(ctx)
	} else {
		err = e.startDev(ctx)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// inProcessEnv sets up an in-process environment beside e: a database
// named as e's with suffix, on the same server, kept or dropped as e's.
func (e *phaseEnv) inProcessEnv(ctx context.Context, suffix string) (*phaseEnv, error) {
	return newPhaseEnv(ctx, envConfig{postgresURL: e.cfg.postgresURL, name: e.cfg.name + suffix, keep: e.cfg.keep})
}

func (e *phaseEnv) startDev(ctx context.Context) error {
	var err error
	e.chDB = e.cfg.name
	if e.chOpts, err = clickHouseOptions(e.cfg.dev.clickHouseAddr); err != nil {
		return err
	}
	logf("starting helpdeskflow dev (Postgres db %s, ClickHouse db %s)", e.pg.name, e.chDB)
	if e.dev, err = startDev(ctx, *e.cfg.dev, e.pg.url, e.chDB); err != nil {
		return err
	}
	logf("dev is running at %s (pid %d)", e.dev.url, e.dev.pid)
	e.ch, err = openClickHouse(ctx, e.chOpts)
	return err
}

func (e *phaseEnv) prepareInProcess(ctx context.Context) error {
	pool, err := pg.Connect(ctx, e.pg.url, 2)
	if err != nil {
		return err
	}
	err = pg.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return fmt.Errorf("migrate %s: %w", e.pg.name, err)
	}
	spec, err := secretbox.NewKey("bench1")
	if err != nil {
		return err
	}
	if e.keys, err = secretbox.ParseKeyring(spec); err != nil {
		return err
	}
	e.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return nil
}

// close tears the environment down, the reverse of its setup: the
// ClickHouse connection; dev, with SIGTERM, unless it has exited (run
// stops it itself first, to report how); the ClickHouse and Postgres
// databases, dropped, or with keep only logged. It returns the errors of
// stopping and dropping.
func (e *phaseEnv) close() error {
	var errs []error
	if e.ch != nil {
		e.ch.Close()
	}
	if e.dev != nil && !e.dev.exited() {
		errs = append(errs, e.dev.stop(30*time.Second))
	}
	if e.chOpts != nil {
		if e.cfg.keep {
			logf("kept ClickHouse database %s", e.chDB)
		} else {
			errs = append(errs, dropClickHouseDatabase(e.chOpts, e.chDB))
		}
	}
	if e.pg != nil {
		if e.cfg.keep {
			logf("kept Postgres database %s", e.pg.name)
			e.pg.close()
		} else {
			errs = append(errs, e.pg.drop())
		}
	}
	return errors.Join(errs...)
}

// closeInto closes e and joins its error to *err; for a defer.
func (e *phaseEnv) closeInto(err *error) {
	if cerr := e.close(); cerr != nil {
		*err = errors.Join(*err, cerr)
	}
}

// service is HelpDeskFlow's code as an in-process phase runs it: a pool
// of its own on the environment's database, the event store over it, a
// ticket command service and a fresh workspace.
type service struct {
	pool   interface{ Close() }
	store  *eventstore.Store
	rooms  rooms
	svc    *tickets.Service
	ws     uuid.UUID
	closed bool
}

// openService opens a service with a pool of conns connections on an
// in-process environment's database, and creates the workspace named
// workspace as benchActor. The caller closes it; closing its pool makes
// its backends flush their statistics.
func (e *phaseEnv) openService(ctx context.Context, conns int32, workspace string) (*service, error) {
	pool, err := pg.Connect(ctx, e.pg.url, conns)
	if err != nil {
		return nil, err
	}
	store, err := eventstore.New(pool, nil)
	if err != nil {
		pool.Close()
		return nil, err
	}
	svc := tickets.New(postgres.Tickets(store))
	ws, _, err := access.New(postgres.Access(store)).CreateWorkspace(ctx, benchActor, workspace)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	rooms := rooms{connections: connections.New(pool, store), mail: mailrooms.New(pool), outbound: outbound.New(pool), queues: queues.New(pool)}
	return &service{pool: pool, store: store, rooms: rooms, svc: svc, ws: ws}, nil
}

// rooms are the Postgres rooms under store/ that the phases drive beside
// the event store.
type rooms struct {
	connections *connections.Store
	mail        *mailrooms.Store
	outbound    *outbound.Store
	queues      *queues.Store
}

// webhookStores are the webhooks and their delivery queue.
type webhookStores struct {
	*outbound.Store
	*queueStore
}

// mailStores are the mailboxes and the mail records the sync reads.
type mailStores struct {
	*connectionStore
	*mailrooms.Store
}

// The stores under names of their own, so that one struct can embed
// several.
type (
	queueStore      = queues.Store
	connectionStore = connections.Store
)

// close closes the service's pool, once.
func (s *service) close() {
	if !s.closed {
		s.closed = true
		s.pool.Close()
	}
}

var (
	workspaceIDRE = regexp.MustCompile(`(?m)^workspace_id:\s+(\S+)\s*$`)
	adminKeyRE    = regexp.MustCompile(`(?m)^admin_key:\s+(hdf_\w+)\s*$`)
)

// createWorkspace runs `helpdeskflow workspace create NAME` against a dev
// environment's databases and returns the new workspace's id and admin key.
func (e *phaseEnv) createWorkspace(ctx context.Context, name string) (id, key string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.dev.bin, "workspace", "create", name)
	cmd.Dir = e.cfg.dev.tmp
	cmd.Env = childEnv(false, "HDF_POSTGRES_URL="+e.pg.url, "HDF_CLICKHOUSE_ADDR="+e.cfg.dev.clickHouseAddr,
		"HDF_CLICKHOUSE_DATABASE="+e.chDB, "HDF_LOG_LEVEL=warn")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("helpdeskflow workspace create: %w: %s", err, trimBody(stderr.Bytes()))
	}
	m, k := workspaceIDRE.FindSubmatch(stdout.Bytes()), adminKeyRE.FindSubmatch(stdout.Bytes())
	if m == nil || k == nil {
		return "", "", fmt.Errorf("helpdeskflow workspace create printed no workspace id and admin key: %s", trimBody(stdout.Bytes()))
	}
	return string(m[1]), string(k[1]), nil
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
	"github.com/helpdeskflow/helpdeskflow/relay"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// crashChildEnv makes the test binary act as a relay that is killed with
// SIGKILL right after it wrote its first produce request to the broker:
// after the Postgres commit, before the broker's acknowledgement.
const crashChildEnv = "HDF_TEST_CRASHING_RELAY"

// mainChildEnv makes the test binary run helpdeskflow's main with the
// arguments after "--", as a separate process.
const mainChildEnv = "HDF_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		os.Exit(runCrashingRelay())
	}
	if os.Getenv(mainChildEnv) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"helpdeskflow"}, os.Args[i+1:]...)
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killOnProduce is a franz-go hook that kills the process as soon as a
// produce request has been written to a broker.
type killOnProduce struct{}

func (killOnProduce) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 0 && err == nil { // 0: Produce
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}

func runCrashingRelay() int {
	ctx := context.Background()
	pool, err := pg.Connect(ctx, os.Getenv("HDF_POSTGRES_URL"), 4)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	store, err := eventstore.New(pool, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(os.Getenv("HDF_KAFKA_BROKERS")), kgo.WithHooks(killOnProduce{}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	relay, err := relay.New(store, client, relay.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	relay.Run(ctx) // never returns: the hook kills the process
	return 3
}

// runRoles runs serve with the given roles until the test ends and returns
// the address its HTTP port listens on.
func runRoles(t *testing.T, cfg config, brokers []string, roles string) string {
	t.Helper()
	cfg.Roles = roles
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- serve(ctx, cfg, logger, brokers, func(addr string) { ready <- addr }) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve %s: %v", roles, err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("serve %s did not start", roles)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve %s: %v", roles, err)
		}
	})
	return addr
}

func TestRelay_KilledBetweenCommitAndAck(t *testing.T) {
	cfg := testConfig(t)
	_, brokers := testenv.Kafka(t)
	ctx := context.Background()

	pool, err := pg.Connect(ctx, cfg.PostgresURL, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := eventstore.New(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := testenv.NewCommands(store, testenv.CommandOptions{})
	workspaceID, _, err := svc.Access.CreateWorkspace(ctx, systemMetadata(), "crash")
	if err != nil {
		t.Fatal(err)
	}
	// Acknowledged tickets: committed in Postgres, none published yet.
	const ticketCount = 40
	acknowledged := map[string]bool{}
	for i := range ticketCount {
		tk, err := svc.Tickets.CreateTicket(ctx, workspaceID, systemMetadata(), tickets.CreateTicket{
			Subject: fmt.Sprintf("ticket %d", i), Customer: tickets.CustomerRef{Email: fmt.Sprintf("c%d@example.com", i%7)},
			Message: tickets.NewTicketMessage{Body: "hello"},
		})
		if err != nil {
			t.Fatal(err)
		}
		acknowledged[tk.ID.String()] = true
	}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), crashChildEnv+"=1", "HDF_POSTGRES_URL="+cfg.PostgresURL, "HDF_KAFKA_BROKERS="+brokers[0])
	child.Stderr = testWriter{t}
	err = child.Run()
	ws, ok := child.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the crashing relay ended with %v, want death by SIGKILL", err)
	}
	var checkpoints int
	if err := pool.Pool().QueryRow(ctx, `SELECT count(*) FROM relay_checkpoints`).Scan(&checkpoints); err != nil {
		t.Fatal(err)
	}
	if checkpoints != 0 {
		t.Fatalf("the killed relay saved a checkpoint before the broker acknowledged")
	}

	// A fresh relay republishes from the checkpoint; the projector collapses
	// whatever the killed one got to the broker.
	runRoles(t, cfg, brokers, "relay,projector")
	ch, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var events uint64
	if err := pool.Pool().QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := ch.QueryRow(ctx, `SELECT count() FROM audit_log FINAL`).Scan(&n); err != nil {
			return err
		}
		if n != events {
			return fmt.Errorf("audit_log has %d events with FINAL, want %d", n, events)
		}
		return nil
	})
	// The projector writes its tables concurrently, so the tickets table
	// may complete after the audit log.
	counts := map[string]uint64{}
	testenv.Eventually(t, 30*time.Second, func() error {
		rows, err := ch.Query(ctx, `SELECT toString(ticket_id), count() FROM tickets FINAL WHERE workspace_id = ? GROUP BY ticket_id`, workspaceID)
		if err != nil {
			return err
		}
		defer rows.Close()
		clear(counts)
		for rows.Next() {
			var id string
			var n uint64
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			counts[id] = n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(counts) < ticketCount {
			return fmt.Errorf("%d tickets in ClickHouse, want %d", len(counts), ticketCount)
		}
		return nil
	})
	seen := 0
	for id, n := range counts {
		if !acknowledged[id] || n != 1 {
			t.Errorf("ticket %s appears %d times (acknowledged: %v)", id, n, acknowledged[id])
		}
		seen++
	}
	if seen != ticketCount {
		t.Errorf("%d tickets reached ClickHouse, want every one of the %d acknowledged", seen, ticketCount)
	}
}

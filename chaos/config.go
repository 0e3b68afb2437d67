package chaos

import (
	"io"
	"time"
)

// Config is one run of the suite. FullConfig and ShortConfig give the
// faults and load; the caller fills in where things are.
type Config struct {
	// Binary is the built helpdeskflow binary.
	Binary string
	// Services is scripts/services.sh and Profile the profile whose servers
	// the run starts, stops and restores (chaos or chaostest); the run
	// deletes the profile's data first.
	Services, Profile string
	// PostgresURL, ClickHouseAddr and ClickHouseDatabase are the profile's
	// servers; RestoreURL is where `services.sh restore` starts the
	// restored cluster (services.sh env prints all four).
	PostgresURL, RestoreURL, ClickHouseAddr, ClickHouseDatabase string
	// Environ is the environment the processes start with (without its
	// HDF_ variables, which the run sets).
	Environ []string
	// WorkDir holds the processes' logs, the broker's data, the summary and
	// any linearizability visualisation.
	WorkDir string
	// BasePort is the first of the ports the run listens on, all on
	// 127.0.0.1: the API processes, the other roles' health ports, the
	// metrics ports, the broker and the webhook receiver (BasePort+0 to +11).
	BasePort int
	// Out gets the progress lines and the summary.
	Out io.Writer

	Warmup     time.Duration // steady load before the first fault
	KillCycles int           // kill -9 of a random role, then its restart
	KillEvery  time.Duration // the pause before each kill
	Outage     time.Duration // how long the broker and ClickHouse stay stopped
	Cooldown   time.Duration // steady load after the last fault

	LoadWorkers int           // goroutines making creates, updates and messages
	LoadPause   time.Duration // each worker's pause between writes

	HistoryGroups  int           // tickets written and read concurrently for the linearizability check
	HistoryClients int           // clients per such ticket
	HistoryWindow  time.Duration // how long a group stays on one ticket
	HistoryPause   time.Duration // each client's pause between operations

	// CatchUp bounds the wait for the projector and the webhook deliveries
	// after the load stopped.
	CatchUp time.Duration
	// CheckTimeout bounds each linearizability check.
	CheckTimeout time.Duration
}

// FullConfig is `make chaos`: 50 kill cycles, the broker and ClickHouse
// stopped for 60 s each.
func FullConfig() Config {
	return Config{
		Warmup: 10 * time.Second, KillCycles: 50, KillEvery: 3 * time.Second, Outage: 60 * time.Second, Cooldown: 10 * time.Second,
		LoadWorkers: 2, LoadPause: 150 * time.Millisecond,
		HistoryGroups: 3, HistoryClients: 3, HistoryWindow: 20 * time.Second, HistoryPause: 150 * time.Millisecond,
		CatchUp: 5 * time.Minute, CheckTimeout: 2 * time.Minute,
	}
}

// ShortConfig is the run in `make test`: 3 kill cycles and 5 s outages.
func ShortConfig() Config {
	return Config{
		Warmup: 3 * time.Second, KillCycles: 3, KillEvery: 2 * time.Second, Outage: 5 * time.Second, Cooldown: 3 * time.Second,
		LoadWorkers: 2, LoadPause: 100 * time.Millisecond,
		HistoryGroups: 2, HistoryClients: 3, HistoryWindow: 10 * time.Second, HistoryPause: 100 * time.Millisecond,
		CatchUp: 2 * time.Minute, CheckTimeout: time.Minute,
	}
}

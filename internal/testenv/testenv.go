// Package testenv gives integration tests their own real services: a fresh
// Postgres database with the migrations applied, a fresh ClickHouse database,
// and an embedded Kafka-protocol broker reached over TCP. The servers
// themselves are started by `make test` (scripts/services.sh start test); a
// test whose service is missing fails, it never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// PostgresURL is the test server's URL: HDF_POSTGRES_URL, or the test
// profile's default.
func PostgresURL() string {
	if u := os.Getenv("HDF_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:25432/helpdeskflow?sslmode=disable"
}

// ClickHouseAddr is the test ClickHouse server's native address:
// HDF_CLICKHOUSE_ADDR, or the test profile's default.
func ClickHouseAddr() string {
	if a := os.Getenv("HDF_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:29000"
}

// RandomName returns prefix followed by 12 random hex digits, usable as a
// database name.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// PostgresDatabase creates a new database on the test server, applies the
// migrations, and returns its URL; the database is dropped when t ends.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pg.Connect(ctx, PostgresURL(), 2)
	if err != nil {
		t.Fatalf("test Postgres at %s is not reachable (run `make test`, which starts it): %v", PostgresURL(), err)
	}
	defer admin.Close()
	name := RandomName("t_")
	if _, err := admin.Pool().Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pg.Connect(ctx, PostgresURL(), 1)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close()
		if _, err := admin.Pool().Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(PostgresURL())
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresURL(), err)
	}
	u.Path = "/" + name
	dbURL := u.String()
	pool, err := pg.Connect(ctx, dbURL, 2)
	if err != nil {
		t.Fatalf("connect to %s: %v", name, err)
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate %s: %v", name, err)
	}
	return dbURL
}

// Postgres returns a new migrated database (see PostgresDatabase), closed
// when t ends.
func Postgres(t testing.TB) *pg.DB {
	t.Helper()
	db, err := pg.Connect(context.Background(), PostgresDatabase(t), 50)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	// As the service runs: the commands that may group their commits do.
	if err := db.EnableGroupCommit(pg.GroupConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	return db
}

// Store returns an event store on a new migrated database.
func Store(t testing.TB) *eventstore.Store {
	t.Helper()
	return StoreOn(t, Postgres(t))
}

// StoreOn returns an event store on db, without metrics.
func StoreOn(t testing.TB, db *pg.DB) *eventstore.Store {
	t.Helper()
	s, err := eventstore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Kafka starts an embedded broker on a loopback TCP port with the events
// topic (4 partitions) and returns its address; it stops when t ends. Extra
// options (such as kfake.DataDir) are passed on.
func Kafka(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, kafka.TopicEvents, kafka.TopicAPIRequests, kafka.TopicServiceFacts)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start embedded Kafka: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// TopicReader is a Kafka client on brokers that reads topic from its
// start; the caller closes it.
func TopicReader(t testing.TB, brokers []string, topic string) *kgo.Client {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// Eventually polls cond every 50 ms until it returns nil or timeout passes,
// then fails t with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Run runs run on its own goroutine until stop is called or the test ends,
// whichever comes first; stop cancels run's context and returns once run
// has returned (run's error is dropped: workers return nil when their
// context ends). Calling stop again does nothing.
func Run(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }() //nolint:errcheck // see above
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

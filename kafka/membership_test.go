package kafka_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// childEnv makes the test binary run one Consumer (see runChild) until it
// is killed; the other childEnv* variables configure it.
const (
	childEnv           = "HDF_TEST_CONSUMER_CHILD"
	childBrokersEnv    = "HDF_TEST_CONSUMER_BROKERS"
	childGroupEnv      = "HDF_TEST_CONSUMER_GROUP"
	childInstanceEnv   = "HDF_TEST_CONSUMER_INSTANCE_ID"
	childSessionEnv    = "HDF_TEST_CONSUMER_SESSION_TIMEOUT"
	childHeartbeatEach = 200 * time.Millisecond
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// printingBatch prints "flushed <value>" for each of its records when it is
// flushed, so the parent sees what the child consumed.
type printingBatch struct{ records []*kafka.Record }

func (b *printingBatch) Add(r *kafka.Record) { b.records = append(b.records, r) }

func (b *printingBatch) Flush(context.Context, <-chan struct{}, bool) (int, error) {
	for _, r := range b.records {
		fmt.Printf("flushed %s\n", r.Value)
	}
	return len(b.records), nil
}

// runChild runs a Consumer configured by the childEnv* variables until the
// process is killed. Its rebalance timeout is its session timeout, so
// neither ends a dead member's membership before the other.
func runChild() int {
	session, err := time.ParseDuration(os.Getenv(childSessionEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "session timeout:", err)
		return 2
	}
	c := kafka.NewConsumer(kafka.ConsumerConfig{
		Name: "child consumer", Brokers: strings.Split(os.Getenv(childBrokersEnv), ","), Group: os.Getenv(childGroupEnv),
		Topic: kafka.TopicEvents, BatchSize: 100, FlushInterval: 10 * time.Millisecond,
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
		NewBatch: func() kafka.Batch { return &printingBatch{} }, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Errors:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "errors"}, []string{"kind"}),
		Lag:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lag"}, []string{"topic", "partition"}),
		Membership: kafka.Membership{InstanceID: os.Getenv(childInstanceEnv), SessionTimeout: session, HeartbeatInterval: childHeartbeatEach, RebalanceTimeout: session},
		Options:    []kafka.Option{kgo.FetchMaxWait(100 * time.Millisecond)},
	})
	if err := c.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is a consumer process: what it flushed, and its kill.
type child struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	flushed map[string]bool
	done    chan struct{} // closed when its stdout is read to the end
}

// startChild starts a consumer process in group with instance id (empty:
// dynamic) and session timeout.
func startChild(t *testing.T, brokers []string, group, instanceID string, session time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childBrokersEnv+"="+strings.Join(brokers, ","), childGroupEnv+"="+group,
		childInstanceEnv+"="+instanceID, childSessionEnv+"="+session.String())
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, flushed: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		s := bufio.NewScanner(out)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "flushed "); ok {
				c.mu.Lock()
				c.flushed[v] = true
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(c.kill)
	return c
}

func (c *child) hasFlushed(value string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushed[value]
}

// kill kills the process with SIGKILL (it cannot leave its group) and
// waits until it is gone.
func (c *child) kill() {
	c.cmd.Process.Kill() //nolint:errcheck // it may be gone already
	<-c.done
	c.cmd.Wait() //nolint:errcheck // killed
}

// testWriter sends a child's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("child: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// produceValue publishes one record with value v.
func produceValue(t *testing.T, brokers []string, v string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: kafka.TopicEvents, Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// groupMembers returns the instance ids of group's members ("" for a
// dynamic member).
func groupMembers(t *testing.T, brokers []string, group string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("describe group %s: %v", group, err)
	}
	var ids []string
	for _, m := range resp.Groups[0].Members {
		id := ""
		if m.InstanceID != nil {
			id = *m.InstanceID
		}
		ids = append(ids, id)
	}
	return ids
}

// consumeAndKill starts a consumer process, waits until it flushed and
// committed a first record, and kills it with SIGKILL: a member that did
// not leave its group.
func consumeAndKill(t *testing.T, brokers []string, group, instanceID string, session time.Duration) {
	t.Helper()
	first := startChild(t, brokers, group, instanceID, session)
	produceValue(t, brokers, "before-kill")
	testenv.Eventually(t, wait, func() error {
		if !first.hasFlushed("before-kill") {
			return fmt.Errorf("the first process has not flushed the first record")
		}
		if n := committed(t, brokers, group); n != 1 {
			return fmt.Errorf("committed %d, want 1", n)
		}
		return nil
	})
	first.kill()
}

// A static member killed without leaving is replaced by its restart with
// the same instance id at once: the restart is assigned the partitions and
// consumes a record produced after the kill. The session timeout is far
// longer than the test waits, so the old member's session never expired.
func TestConsumer_StaticMemberRestartTakesPartitionsBack(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	const group, id = "g-static", "member-1"
	const session = 4 * time.Minute // the test waits at most a quarter of it
	consumeAndKill(t, brokers, group, id, session)

	restarted := startChild(t, brokers, group, id, session)
	produceValue(t, brokers, "after-kill")
	testenv.Eventually(t, time.Minute, func() error {
		if !restarted.hasFlushed("after-kill") {
			return fmt.Errorf("the restarted process has not consumed the record produced after the kill (its old member's session lasts %s)", session)
		}
		return nil
	})
	if got := groupMembers(t, brokers, group); len(got) != 1 || got[0] != id {
		t.Errorf("group members %q, want only %q: the restart did not replace its old member", got, id)
	}
	if restarted.hasFlushed("before-kill") {
		t.Error("the restarted process consumed the record its predecessor had committed")
	}
}

// A dynamic member killed without leaving stays in the group until its
// session times out: its restart joins as a second member and gets the
// partitions (and the record produced after the kill) only once the dead
// member is gone.
func TestConsumer_DynamicMemberRestartWaitsForSession(t *testing.T) {
	t.Parallel()
	_, brokers := testenv.Kafka(t)
	const group = "g-dynamic"
	const session = 20 * time.Second
	consumeAndKill(t, brokers, group, "", session)

	restarted := startChild(t, brokers, group, "", session)
	produceValue(t, brokers, "after-kill")
	testenv.Eventually(t, wait, func() error {
		if got := groupMembers(t, brokers, group); len(got) != 2 {
			return fmt.Errorf("group members %q, want the dead member and its restart", got)
		}
		return nil
	})
	testenv.Eventually(t, 2*time.Minute, func() error {
		if !restarted.hasFlushed("after-kill") {
			return fmt.Errorf("the restarted process has not consumed the record produced after the kill")
		}
		return nil
	})
	if got := groupMembers(t, brokers, group); len(got) != 1 || got[0] != "" {
		t.Errorf("group members %q, want only the restarted dynamic member", got)
	}
}

func TestMembership_Check(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    kafka.Membership
		want string // a substring of the error; "" for none
	}{
		{"zero value: dynamic, defaults", kafka.Membership{}, ""},
		{"pod name", kafka.Membership{InstanceID: "projector-7f9c6d5b8-x2k4p"}, ""},
		{"longest id", kafka.Membership{InstanceID: strings.Repeat("a", 249)}, ""},
		{"too long", kafka.Membership{InstanceID: strings.Repeat("a", 250)}, "instance id: at most 249"},
		{"slash", kafka.Membership{InstanceID: "a/b"}, "instance id: only letters"},
		{"dot", kafka.Membership{InstanceID: "."}, "instance id: must not be"},
		{"heartbeat not below session", kafka.Membership{SessionTimeout: time.Second, HeartbeatInterval: time.Second}, "heartbeat interval: must be below"},
		{"negative rebalance timeout", kafka.Membership{RebalanceTimeout: -time.Second}, "rebalance timeout: must be positive"},
	} {
		errs := tc.m.Check()
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: Check() = %v, want none", tc.name, errs)
		case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want)):
			t.Errorf("%s: Check() = %v, want one containing %q", tc.name, errs, tc.want)
		}
	}
	if kafka.DefaultHeartbeatInterval*3 > kafka.DefaultSessionTimeout || kafka.DefaultSessionTimeout < 6*time.Second {
		t.Errorf("defaults: heartbeat %s must be at most a third of the session %s, which Kafka's default group.min.session.timeout.ms (6 s) must accept",
			kafka.DefaultHeartbeatInterval, kafka.DefaultSessionTimeout)
	}
}

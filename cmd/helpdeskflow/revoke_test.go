package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// startAPIProcess runs `helpdeskflow serve --roles api` as a separate OS
// process (this test binary re-executing main) and returns its URL.
func startAPIProcess(t *testing.T, cfg config, brokers []string) string {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$", "--", "serve", "--roles", "api")
	child.Env = append(os.Environ(), mainChildEnv+"=1",
		"HDF_POSTGRES_URL="+cfg.PostgresURL, "HDF_KAFKA_BROKERS="+brokers[0],
		"HDF_CLICKHOUSE_ADDR="+cfg.ClickHouseAddr, "HDF_CLICKHOUSE_DATABASE="+cfg.ClickHouseDatabase,
		"HDF_HTTP_ADDR=127.0.0.1:0", "HDF_LOG_LEVEL=info")
	stderr, err := child.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		child.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
		done := make(chan error, 1)
		go func() { done <- child.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("API process exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			child.Process.Kill() //nolint:errcheck // best effort
			t.Error("API process did not stop within 30 s")
		}
	})
	addrRE := regexp.MustCompile(`helpdeskflow running.* http=(\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case addr := <-found:
		return "http://" + addr
	case <-time.After(60 * time.Second):
		t.Fatal("the API process did not start within 60 s")
		return ""
	}
}

// TestRevocation_TwoAPIProcesses: a key revoked through one API process is
// refused by the other on the very next request, though both had it cached.
func TestRevocation_TwoAPIProcesses(t *testing.T) {
	cfg := testConfig(t)
	_, brokers := testenv.Kafka(t)
	ctx := context.Background()
	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	svc := testenv.NewCommands(store.events, testenv.CommandOptions{})
	workspaceID, admin, err := svc.Access.CreateWorkspace(ctx, systemMetadata(), "two processes")
	if err != nil {
		t.Fatal(err)
	}
	first, second := startAPIProcess(t, cfg, brokers), startAPIProcess(t, cfg, brokers)

	for round := range 5 {
		key, err := svc.Access.CreateAPIKey(ctx, systemMetadata(), workspaceID, access.CreateAPIKey{Role: "agent", Name: fmt.Sprint("round ", round)})
		if err != nil {
			t.Fatal(err)
		}
		// Both processes have seen the key, so both hold it in memory.
		for range 5 {
			for _, url := range []string{first, second} {
				if status, _, body := call(t, "GET", url+"/v1/tickets", key.Secret, nil); status != 200 {
					t.Fatalf("before revocation: %d %v", status, body)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		revoker, other := first, second
		if round%2 == 1 {
			revoker, other = second, first
		}
		if status, _, body := call(t, "DELETE", revoker+"/v1/api-keys/"+key.ID.String(), admin.Secret, nil); status != 200 {
			t.Fatalf("revoke: %d %v", status, body)
		}
		for _, url := range []string{other, revoker} {
			if status, _, body := call(t, "GET", url+"/v1/tickets", key.Secret, nil); status != 401 {
				t.Fatalf("round %d: the revoked key got %d %v from %s", round, status, body, url)
			}
		}
	}
}

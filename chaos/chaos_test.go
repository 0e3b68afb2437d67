package chaos_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/chaos"
)

// TestChaos_ShortRun is the suite's short run (3 kill cycles, 5 s
// outages) on the chaostest profile's own Postgres and ClickHouse (ports
// 31532 and 31950; the processes on 31700-31711), which it deletes and
// stops again; it never touches the servers other tests share. It skips
// when those servers cannot be started here, except under CI=true, where
// that fails. Runs of it in several checkouts at once take turns (a lock
// in /tmp), since they share the ports.
func TestChaos_ShortRun(t *testing.T) {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "helpdeskflow-chaostest.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "helpdeskflow")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/helpdeskflow")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build helpdeskflow: %v\n%s", err, out)
	}
	services, err := filepath.Abs("../scripts/services.sh")
	if err != nil {
		t.Fatal(err)
	}
	cfg := chaos.ShortConfig()
	if err := cfg.UseProfile(ctx, services, "chaostest"); err != nil {
		t.Fatal(err)
	}
	cfg.Binary, cfg.WorkDir, cfg.BasePort, cfg.Environ = bin, filepath.Join(dir, "run"), 31700, os.Environ()
	var progress bytes.Buffer
	cfg.Out = &progress
	t.Cleanup(func() {
		clean := exec.Command("bash", services, "clean", "chaostest")
		if out, err := clean.CombinedOutput(); err != nil {
			t.Errorf("services.sh clean chaostest: %v\n%s", err, out)
		}
	})

	report, err := chaos.Run(ctx, cfg)
	if serr := (*chaos.ServersError)(nil); errors.As(err, &serr) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v\n%s", err, progress.String())
		}
		t.Skipf("cannot start the chaostest servers here: %v", err)
	}
	if err != nil {
		t.Fatalf("%v\n%s%s", err, progress.String(), logTail(cfg.WorkDir))
	}
	var summary bytes.Buffer
	report.Print(&summary, cfg)
	t.Log(summary.String())
	if !report.OK() {
		t.Fatalf("the short chaos run failed:\n%s\n%s", strings.Join(report.Failures, "\n"), progress.String())
	}
}

// logTail is the end of every process's log in the run's directory.
func logTail(dir string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		b.WriteString("\n----- " + filepath.Base(l) + " -----\n")
		b.Write(data)
	}
	return b.String()
}

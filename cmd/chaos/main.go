// Command chaos runs the chaos suite (package chaos) against the built
// helpdeskflow binary: `make chaos`. It exits 1 on any loss, duplicate,
// missing webhook delivery, unexcused API failure or non-linearizable
// history, and 2 when the run could not be carried out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/helpdeskflow/helpdeskflow/chaos"
)

func main() {
	bin := flag.String("bin", "bin/helpdeskflow", "the helpdeskflow binary to run")
	services := flag.String("services", "scripts/services.sh", "the services script")
	profile := flag.String("profile", "chaos", "services.sh profile of the run's own Postgres and ClickHouse (its data is deleted first)")
	workDir := flag.String("workdir", ".local/chaos-run", "logs, the broker's data, summary.md and visualisations")
	basePort := flag.Int("base-port", 31600, "first of the 12 loopback ports the processes, the broker and the webhook receiver listen on")
	short := flag.Bool("short", false, "the short run of `make test` (3 cycles, 5 s outages)")
	cycles := flag.Int("cycles", 0, "kill -9 cycles (default 50; -short 3)")
	outage := flag.Duration("outage", 0, "how long the broker and ClickHouse stay stopped (default 60s; -short 5s)")
	limit := flag.Duration("timeout", 40*time.Minute, "the whole run stops after this")
	flag.Parse()

	cfg := chaos.FullConfig()
	if *short {
		cfg = chaos.ShortConfig()
	}
	if *cycles > 0 {
		cfg.KillCycles = *cycles
	}
	if *outage > 0 {
		cfg.Outage = *outage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	if err := cfg.UseProfile(ctx, *services, *profile); err != nil {
		fail(err)
	}
	var err error
	if cfg.Binary, err = filepath.Abs(*bin); err != nil {
		fail(err)
	}
	if cfg.WorkDir, err = filepath.Abs(*workDir); err != nil {
		fail(err)
	}
	cfg.BasePort, cfg.Environ, cfg.Out = *basePort, os.Environ(), os.Stderr
	report, err := chaos.Run(ctx, cfg)
	if err != nil {
		fail(err)
	}
	report.Print(os.Stdout, cfg)
	if path, err := report.WriteSummary(cfg); err == nil {
		fmt.Printf("\nsummary: %s\n", path)
	}
	if !report.OK() {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "chaos:", err)
	os.Exit(2)
}

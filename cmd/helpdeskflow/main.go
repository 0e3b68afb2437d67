// Command helpdeskflow is HelpDeskFlow's one binary: the API, the relay, the
// projector and the dispatcher (as roles of `serve`), everything at once with
// an embedded Kafka broker (`dev`), and the administrative commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: helpdeskflow <command> [flags]

commands:
  dev                      every role in one process with an embedded Kafka broker
  serve [--roles ...]      the given roles against HDF_KAFKA_BROKERS
  broker                   a single-node Kafka broker (kfake) with its data in --data-dir
  migrate                  apply the Postgres and ClickHouse migrations
  workspace create NAME    create a workspace; prints its id and an admin API key
  keys create --workspace ID --role admin|agent [--name NAME]
                           create an API key; prints it (shown only once)
  keys list --workspace ID list a workspace's active keys (prefix, role, created, last used)
  keys revoke ID           revoke a key; refused everywhere when this returns
  webhook verify --secret S --header H --body-file F
                           check a webhook signature and say why it does not match
  projections rebuild [--tables T,...] [--dry-run] [--drop-old]
                           rebuild the ClickHouse read models from the event store, blue/green
  projections drop-old     drop the tables a rebuild replaced and kept
  healthcheck [--url URL]  exit 0 when /readyz on --http-addr (or URL) answers 2xx (the image's HEALTHCHECK)

Run "helpdeskflow <command> -h" for the flags; each has an HDF_* environment variable.
`

func main() {
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helpdeskflow:", err)
		os.Exit(1)
	}
}

// run executes one subcommand; it is main without the process around it,
// so tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "dev":
		cfg, _, err := parseConfig("dev", args[1:])
		if err != nil {
			return err
		}
		return runDev(ctx, cfg, newLogger(cfg, stderr), stdout)
	case "serve":
		cfg, _, err := parseConfig("serve", args[1:])
		if err != nil {
			return err
		}
		if len(cfg.brokers()) == 0 {
			return errors.New("serve needs HDF_KAFKA_BROKERS (--kafka-brokers); use `helpdeskflow dev` for an embedded broker")
		}
		return serve(ctx, cfg, newLogger(cfg, stderr), cfg.brokers(), nil)
	case "broker":
		cfg, _, err := parseConfig("broker", args[1:])
		if err != nil {
			return err
		}
		return runBroker(ctx, cfg, newLogger(cfg, stderr), stdout)
	case "migrate":
		cfg, _, err := parseConfig("migrate", args[1:])
		if err != nil {
			return err
		}
		return migrateAll(ctx, cfg)
	case "workspace":
		cfg, rest, err := parseConfig("workspace", args[1:])
		if err != nil {
			return err
		}
		if len(rest) != 2 || rest[0] != "create" {
			return errors.New("usage: helpdeskflow workspace create NAME")
		}
		return createWorkspace(ctx, cfg, rest[1], stdout)
	case "keys":
		cfg, rest, err := parseConfig("keys", args[1:])
		if err != nil {
			return err
		}
		return keysCommand(ctx, cfg, rest, stdout)
	case "projections":
		cfg, rest, err := parseConfig("projections", args[1:])
		if err != nil {
			return err
		}
		return projectionsCommand(ctx, cfg, rest, stdout)
	case "webhook":
		if len(args) < 2 || args[1] != "verify" {
			return errors.New("usage: helpdeskflow webhook verify --secret S --header 'X-HDF-Signature value' --body-file FILE")
		}
		return runWebhookVerify(args[2:], stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// newLogger writes cfg's log level and up to w, as text (key=value) or,
// with --log-format json, one JSON object per line.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) //nolint:errcheck // validated in parseConfig
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

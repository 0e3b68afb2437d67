package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/postgres"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/kafka"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// demoKeyFile is where dev keeps the demo workspace's admin key, under the
// data directory, because the key itself is stored only as a hash.
const demoKeyFile = "demo-admin-key"

// runDev runs every role in one process with an embedded Kafka-protocol
// broker whose data lives under cfg.DataDir, so a restart loses nothing. On
// the first start it creates a demo workspace and prints its admin key.
func runDev(ctx context.Context, cfg config, logger *slog.Logger, stdout io.Writer) error {
	kafkaDir := filepath.Join(cfg.DataDir, "kafka")
	if err := os.MkdirAll(kafkaDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	brokers, stopBroker, err := kafka.StartBroker(kafkaDir, cfg.KafkaPort, topicPartitions, kafka.TopicEvents, kafka.TopicAPIRequests, kafka.TopicServiceFacts)
	if err != nil {
		return fmt.Errorf("start embedded Kafka broker: %w", err)
	}
	// The broker closes last, after every role has committed its offsets.
	defer stopBroker()
	logger.Info("embedded Kafka broker running", "addr", brokers, "data_dir", kafkaDir)
	cfg.Roles = "api,relay,projector,dispatcher"
	cfg.dev = true
	if cfg.SecretKeys == "" {
		if cfg.SecretKeys, err = devSecretKeys(cfg.DataDir); err != nil {
			return err
		}
	}

	return serve(ctx, cfg, logger, brokers, func(addr string) {
		key, created, err := demoKey(ctx, cfg)
		if err != nil {
			logger.Error("create demo workspace", "err", err)
			return
		}
		fmt.Fprintf(stdout, "\nHelpDeskFlow is running at http://%s\n", addr)
		if created {
			fmt.Fprintf(stdout, "Demo workspace created. Admin API key (shown once, also kept in %s):\n  %s\n",
				filepath.Join(cfg.DataDir, demoKeyFile), key)
		} else {
			fmt.Fprintf(stdout, "Demo admin API key (from %s):\n  %s\n", filepath.Join(cfg.DataDir, demoKeyFile), key)
		}
		fmt.Fprintf(stdout, "Try:\n  curl -s -H 'Authorization: Bearer %s' http://%s/v1/tickets\n\n", key, addr)
		if cfg.ExtraCAFile != "" {
			printLocalMail(stdout, key, addr)
		}
	})
}

// The dev profile's mail servers, as scripts/services.sh starts them (keep
// in step with its port table and users): Dovecot's IMAP over TLS and
// Postfix's SMTP with STARTTLS, both with a certificate of the profile's
// own CA (HDF_EXTRA_CA_FILE), and the support mailbox's login.
const (
	devIMAPSPort    = 19993
	devSMTPPort     = 19587
	devMailUser     = "agent@example.test"
	devMailPassword = "app-password-1"
)

// printLocalMail tells how to connect the demo workspace to the dev
// profile's own mailbox, when dev trusts the profile's CA (make run).
func printLocalMail(w io.Writer, key, addr string) {
	fmt.Fprintf(w, "Mail: connect the demo workspace to the local mailbox %s (README: \"Mail on your machine\"):\n", devMailUser)
	fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' http://%s/v1/integrations/outlook/connect \\\n", key, addr)
	fmt.Fprintf(w, "    -d '{\"imap_host\": \"127.0.0.1\", \"imap_port\": %d, \"imap_security\": \"tls\", \"smtp_host\": \"127.0.0.1\", \"smtp_port\": %d, "+
		"\"smtp_security\": \"starttls\", \"username\": \"%s\", \"password\": \"%s\"}'\n\n", devIMAPSPort, devSMTPPort, devMailUser, devMailPassword)
}

// secretKeysFile keeps dev's generated keyring under the data directory,
// so sealed secrets still open after a restart.
const secretKeysFile = "secret-keys"

func devSecretKeys(dataDir string) (string, error) {
	path := filepath.Join(dataDir, secretKeysFile)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	key, err := secretbox.NewKey("dev1")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep dev secret keys: %w", err)
	}
	return key, nil
}

// demoKey returns the demo workspace's admin key, creating the workspace on
// the first start.
func demoKey(ctx context.Context, cfg config) (string, bool, error) {
	path := filepath.Join(cfg.DataDir, demoKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		return string(b), false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	pool, err := pg.Connect(ctx, cfg.PostgresURL, 2)
	if err != nil {
		return "", false, err
	}
	defer pool.Close()
	store, err := eventstore.New(pool, nil)
	if err != nil {
		return "", false, err
	}
	_, key, err := access.New(postgres.Access(store)).CreateWorkspace(ctx, systemMetadata(), "Demo")
	if err != nil {
		return "", false, err
	}
	if err := os.WriteFile(path, []byte(key.Secret), 0o600); err != nil {
		return "", false, fmt.Errorf("keep demo key: %w", err)
	}
	return key.Secret, true, nil
}

func systemMetadata() helpdeskflow.Metadata {
	return helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem, ID: "cli"}, Channel: helpdeskflow.ChannelSystem}
}

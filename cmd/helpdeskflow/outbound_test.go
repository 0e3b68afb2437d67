package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/egress/egresstest"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

func TestConfig_OutboundAllowLoopback(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		args       []string
		dev        bool
		want       bool
		wantErrMsg string
	}{
		{name: "serve: refused by default"},
		{name: "dev: allowed by default", dev: true, want: true},
		{name: "on", env: map[string]string{"HDF_OUTBOUND_ALLOW_LOOPBACK": "true"}, want: true},
		{name: "the old name still works", env: map[string]string{"HDF_WEBHOOK_ALLOW_LOOPBACK": "true"}, want: true},
		{name: "the old flag still works", args: []string{"--webhook-allow-loopback=true"}, want: true},
		{name: "dev, turned off", dev: true, args: []string{"--outbound-allow-loopback=false"}},
		{name: "both names agreeing", env: map[string]string{"HDF_OUTBOUND_ALLOW_LOOPBACK": "1", "HDF_WEBHOOK_ALLOW_LOOPBACK": "true"}, want: true},
		{name: "both names disagreeing", env: map[string]string{"HDF_OUTBOUND_ALLOW_LOOPBACK": "false", "HDF_WEBHOOK_ALLOW_LOOPBACK": "true"},
			wantErrMsg: "disagree"},
		{name: "not a boolean", env: map[string]string{"HDF_OUTBOUND_ALLOW_LOOPBACK": "sometimes"}, wantErrMsg: "HDF_OUTBOUND_ALLOW_LOOPBACK (--outbound-allow-loopback) must be true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HDF_OUTBOUND_ALLOW_LOOPBACK", "")
			t.Setenv("HDF_WEBHOOK_ALLOW_LOOPBACK", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, ok := parseServeConfig(t, tc.args, tc.wantErrMsg)
			if !ok {
				return
			}
			cfg.dev = tc.dev
			if got := cfg.outboundPolicy(); got.AllowLoopback != tc.want || got.AllowPrivate || len(got.AllowedNets) > 0 {
				t.Errorf("outboundPolicy = %+v, want AllowLoopback %v and nothing else", got, tc.want)
			}
		})
	}
}

// TestIntegrationsOf_OutboundPolicy: the binary's Outlook connections go
// through its policy: with loopback refused (serve's default), connecting
// a mailbox on loopback is refused before any connection.
func TestIntegrationsOf_OutboundPolicy(t *testing.T) {
	store := testenv.NewRooms(t)
	spec, err := secretbox.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	keyring, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	service := testenv.NewCommands(store.EventStore, testenv.CommandOptions{})
	l := egresstest.Listen(t)
	settings := imapmail.Settings{IMAPHost: "127.0.0.1", IMAPPort: l.Port(), IMAPSecurity: imapmail.SecurityTLS,
		SMTPHost: "localhost", SMTPPort: l.Port(), SMTPSecurity: imapmail.SecurityTLS, Username: "support@example.test", Password: "x"}
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem}, Channel: helpdeskflow.ChannelSystem}

	for _, dev := range []bool{false, true} {
		cfg := testConfig(t)
		cfg.SecretKeys, cfg.dev = spec, dev
		manager, _, err := integrationsOf(cfg, cfg.outboundPolicy(), keyring, store.ConnectionStore, service.Tickets, slog.New(slog.NewTextHandler(testWriter{t}, nil)), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		_, err = manager.ConnectIMAP(t.Context(), uuid.New(), md, settings)
		blocked := errors.Is(err, egress.ErrBlockedAddress)
		if blocked == dev || helpdeskflow.ErrorCode(err) != helpdeskflow.EValidation {
			t.Errorf("dev %v: ConnectIMAP = %v, want blocked %v", dev, err, !dev)
		}
		if n, want := l.Accepted(t), map[bool]int64{false: 0, true: 2}[dev]; n != want {
			t.Errorf("dev %v: the listener accepted %d connections, want %d", dev, n, want)
		}
	}
}

// HDF_EXTRA_CA_FILE (--extra-ca-file) adds certificate authorities for the
// mail servers; a file that is missing or holds no certificate is refused
// at start, naming the setting.
func TestConfig_ExtraCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	parseServeConfig(t, []string{"--extra-ca-file", filepath.Join(dir, "missing.pem")}, "HDF_EXTRA_CA_FILE (--extra-ca-file)")
	parseServeConfig(t, []string{"--extra-ca-file", notPEM}, "holds no PEM certificate")
	env := imapmailtest.Env(t)
	cfg, _ := parseServeConfig(t, []string{"--extra-ca-file", env.CAFile}, "")
	tlsConfig, err := cfg.mailTLS()
	if err != nil || tlsConfig == nil || tlsConfig.RootCAs == nil {
		t.Fatalf("mailTLS = %v, %v", tlsConfig, err)
	}
	if cfg, _ := parseServeConfig(t, nil, ""); cfg.ExtraCAFile != "" {
		t.Fatalf("default extra CA file %q", cfg.ExtraCAFile)
	}
}

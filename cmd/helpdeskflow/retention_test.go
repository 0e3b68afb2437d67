package main

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

func TestConfig_Retention(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name       string
		env        map[string]string
		args       []string
		want       retentionSettings
		wantErrMsg string
	}{
		{name: "defaults", want: retentionSettings{Deliveries: 30 * day, Mail: 30 * day, RequestLog: 90 * day, Interval: 10 * time.Minute,
			WebhookFacts: 400 * day, MailFacts: 400 * day, AuditLog: 0}},
		{name: "days, hours and 0 (for ever)", env: map[string]string{"HDF_RETENTION_WEBHOOK_DELIVERIES": "7d", "HDF_RETENTION_REQUEST_LOG": "0",
			"HDF_RETENTION_WEBHOOK_FACTS": "0", "HDF_RETENTION_AUDIT_LOG": "730d"},
			args: []string{"--retention-mail-records=240h", "--retention-interval=1m", "--retention-mail-facts=2160h"},
			want: retentionSettings{Deliveries: 7 * day, Mail: 10 * day, RequestLog: 0, Interval: time.Minute, WebhookFacts: 0, MailFacts: 90 * day,
				AuditLog: 730 * day}},
		{name: "the flag wins", env: map[string]string{"HDF_RETENTION_WEBHOOK_DELIVERIES": "7d"}, args: []string{"--retention-webhook-deliveries=14d"},
			want: retentionSettings{Deliveries: 14 * day, Mail: 30 * day, RequestLog: 90 * day, Interval: 10 * time.Minute,
				WebhookFacts: 400 * day, MailFacts: 400 * day}},
		{name: "negative", env: map[string]string{"HDF_RETENTION_WEBHOOK_DELIVERIES": "-1d"},
			wantErrMsg: "HDF_RETENTION_WEBHOOK_DELIVERIES (--retention-webhook-deliveries) must be 0 (keep for ever) or a positive duration"},
		{name: "not a duration", env: map[string]string{"HDF_RETENTION_REQUEST_LOG": "three months"},
			wantErrMsg: "HDF_RETENTION_REQUEST_LOG (--retention-request-log) must be 0"},
		{name: "mail records shorter than the sync window", env: map[string]string{"HDF_RETENTION_MAIL_RECORDS": "7d"},
			wantErrMsg: "HDF_RETENTION_MAIL_RECORDS (--retention-mail-records) must be 0 (keep for ever) or at least 8d"},
		{name: "audit log negative", env: map[string]string{"HDF_RETENTION_AUDIT_LOG": "-30d"},
			wantErrMsg: "HDF_RETENTION_AUDIT_LOG (--retention-audit-log) must be 0 (keep for ever) or a positive duration"},
		{name: "interval 0", env: map[string]string{"HDF_RETENTION_INTERVAL": "0"}, wantErrMsg: "HDF_RETENTION_INTERVAL (--retention-interval) must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, env := range []string{"HDF_RETENTION_WEBHOOK_DELIVERIES", "HDF_RETENTION_MAIL_RECORDS", "HDF_RETENTION_REQUEST_LOG", "HDF_RETENTION_INTERVAL",
				"HDF_RETENTION_WEBHOOK_FACTS", "HDF_RETENTION_MAIL_FACTS", "HDF_RETENTION_AUDIT_LOG"} {
				t.Setenv(env, tc.env[env]) // restored after the test
				if tc.env[env] == "" {
					os.Unsetenv(env)
				}
			}
			cfg, ok := parseServeConfig(t, tc.args, tc.wantErrMsg)
			if !ok {
				return
			}
			if got, _ := cfg.retention(); got != tc.want {
				t.Errorf("retention = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRetentionJob_DispatcherAlone runs the retention job as `serve
// --roles dispatcher` builds it, on real Postgres and ClickHouse: old
// finished deliveries with their attempts, expired Idempotency-Keys, old
// skipped mail records and the old months of the request log and the
// service facts go; pending and young records stay, and so does the audit
// log, kept for ever by default. The dispatcher alone opens ClickHouse only
// for the job.
func TestRetentionJob_DispatcherAlone(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig(t)
	cfg.Roles, cfg.RetainDeliveries, cfg.RetainMail, cfg.RetainRequestLog, cfg.RetentionInterval = "dispatcher", "30d", "30d", "90d", "10m"
	cfg.RetainWebhookFacts, cfg.RetainMailFacts, cfg.RetainAuditLog = "90d", "120d", "0"
	_, brokers := testenv.Kafka(t)
	p, err := newProcess(ctx, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)), brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if p.ch != nil {
		t.Fatal("a dispatcher alone opened ClickHouse at start")
	}
	ch, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := projections.Migrate(ctx, ch); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	thisMonth := time.Date(now.Year(), now.Month(), 15, 12, 0, 0, 0, time.UTC)
	// Each ClickHouse table gets a row of five months ago ("old") and one
	// of this month ("young"), named in a text column.
	chTables := map[string]string{"api_requests": "time, request_id", "webhook_attempts": "time, event_type",
		"mail_syncs": "time, provider", "audit_log": "occurred_at, event_type"}
	for table, columns := range chTables {
		batch, err := ch.PrepareBatch(ctx, "INSERT INTO "+table+" ("+columns+")")
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range []struct {
			at time.Time
			id string
		}{{thisMonth.AddDate(0, -5, 0), "old"}, {thisMonth, "young"}} {
			if err := batch.Append(row.at, row.id); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}

	old, young := now.Add(-40*24*time.Hour), now.Add(-time.Hour)
	pool := p.db.Pool()
	for _, d := range []struct {
		status string
		at     time.Time
	}{{"succeeded", old}, {"failed", old}, {"pending", old}, {"succeeded", young}} {
		id := uuid.New()
		if _, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, workspace_id, event_id, event_type, stream_id,
				stream_version, payload, status, attempts, max_attempts, created_at, updated_at, head)
			VALUES ($1, $2, $3, $4, 'ticket.created', $5, 1, '{}', $6, 1, 3, $7, $7, $6 = 'pending')`,
			id, uuid.New(), uuid.New(), uuid.New(), uuid.New(), d.status, d.at); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, url, started_at, duration_ms)
			VALUES ($1, 1, 'https://hooks.example.com', $2, 1)`, id, d.at); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []time.Time{old, young} {
		if _, err := pool.Exec(ctx, `INSERT INTO mail_messages (connection_id, external_id, workspace_id, direction, skipped, created_at)
			VALUES ($1, 'm', $2, 'in', 'auto_reply', $3)`, uuid.New(), uuid.New(), at); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO idempotency_keys (workspace_id, api_key_id, key, request_hash, state, lease_token, created_at)
			VALUES ($1, $2, 'k', '\x00', 'running', $3, $4)`, uuid.New(), uuid.New(), uuid.New(), at); err != nil {
			t.Fatal(err)
		}
	}

	job, closeJob, err := newRetentionJob(p)
	if err != nil {
		t.Fatal(err)
	}
	defer closeJob()
	if ran, err := job.RunOnce(ctx); !ran || err != nil {
		t.Fatalf("RunOnce = %v, %v; want a run without errors", ran, err)
	}
	for kind, want := range map[string]float64{retainWebhookDeliveries: 2, retainWebhookAttempts: 2, retainIdempotencyKeys: 1,
		retainMailRecords: 1, retainRequestLog: 1, retainWebhookFacts: 1, retainMailFacts: 1, retainAuditLog: 0} {
		if got := testenv.Metric(t, p.reg, "helpdeskflow_retention_deleted_total", "kind", kind); got != want {
			t.Errorf("deleted %s: %v, want %v", kind, got, want)
		}
	}
	var statuses string
	if err := pool.QueryRow(ctx, `SELECT string_agg(status, ',' ORDER BY status) FROM webhook_deliveries`).Scan(&statuses); err != nil {
		t.Fatal(err)
	}
	if statuses != "pending,succeeded" {
		t.Errorf("deliveries left: %s, want the old pending one and the young one", statuses)
	}
	for table, columns := range chTables {
		name := strings.TrimPrefix(columns, "time, ")
		name = strings.TrimPrefix(name, "occurred_at, ")
		var left string
		if err := ch.QueryRow(ctx, "SELECT arrayStringConcat(groupArray("+name+"), ',') FROM (SELECT "+name+" FROM "+table+" ORDER BY "+name+")").
			Scan(&left); err != nil {
			t.Fatal(err)
		}
		want := "young"
		if table == "audit_log" {
			want = "old,young"
		}
		if left != want {
			t.Errorf("%s rows left: %q, want %q", table, left, want)
		}
	}
}

package main

import (
	"os"
	"strings"
	"testing"
	"time"
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
		{name: "defaults", want: retentionSettings{Deliveries: 30 * day, Mail: 30 * day, RequestLog: 90 * day, Interval: 10 * time.Minute}},
		{name: "days, hours and 0 (for ever)", env: map[string]string{"HDF_RETENTION_WEBHOOK_DELIVERIES": "7d", "HDF_RETENTION_REQUEST_LOG": "0"},
			args: []string{"--retention-mail-records=240h", "--retention-interval=1m"},
			want: retentionSettings{Deliveries: 7 * day, Mail: 10 * day, RequestLog: 0, Interval: time.Minute}},
		{name: "the flag wins", env: map[string]string{"HDF_RETENTION_WEBHOOK_DELIVERIES": "7d"}, args: []string{"--retention-webhook-deliveries=14d"},
			want: retentionSettings{Deliveries: 14 * day, Mail: 30 * day, RequestLog: 90 * day, Interval: 10 * time.Minute}},
		{name: "negative", env: map[string]string{"HDF_RETENTION_WEBHOOK_DELIVERIES": "-1d"},
			wantErrMsg: "HDF_RETENTION_WEBHOOK_DELIVERIES (--retention-webhook-deliveries) must be 0 (keep for ever) or a positive duration"},
		{name: "not a duration", env: map[string]string{"HDF_RETENTION_REQUEST_LOG": "three months"},
			wantErrMsg: "HDF_RETENTION_REQUEST_LOG (--retention-request-log) must be 0"},
		{name: "mail records shorter than the sync window", env: map[string]string{"HDF_RETENTION_MAIL_RECORDS": "7d"},
			wantErrMsg: "HDF_RETENTION_MAIL_RECORDS (--retention-mail-records) must be 0 (keep for ever) or at least 8d"},
		{name: "interval 0", env: map[string]string{"HDF_RETENTION_INTERVAL": "0"}, wantErrMsg: "HDF_RETENTION_INTERVAL (--retention-interval) must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, env := range []string{"HDF_RETENTION_WEBHOOK_DELIVERIES", "HDF_RETENTION_MAIL_RECORDS", "HDF_RETENTION_REQUEST_LOG", "HDF_RETENTION_INTERVAL"} {
				t.Setenv(env, tc.env[env]) // restored after the test
				if tc.env[env] == "" {
					os.Unsetenv(env)
				}
			}
			cfg, _, err := parseConfig("serve", tc.args)
			if tc.wantErrMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrMsg) {
					t.Fatalf("parseConfig = %v, want an error saying %q", err, tc.wantErrMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := cfg.retention(); got != tc.want {
				t.Errorf("retention = %+v, want %+v", got, tc.want)
			}
		})
	}
}

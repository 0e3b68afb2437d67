package main

import (
	"maps"
	"slices"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// TestServe_RolesWithoutAPIAnswerReadyz: a relay, projector or dispatcher
// process answers /readyz as the API does, on what it uses (the image's
// HEALTHCHECK and the Kubernetes readiness probes ask every role), and
// /healthz.
func TestServe_RolesWithoutAPIAnswerReadyz(t *testing.T) {
	cfg := testConfig(t)
	_, brokers := testenv.Kafka(t)
	for _, c := range []struct {
		roles  string
		checks []string
	}{
		{"relay", []string{"kafka", "postgres"}},
		{"projector", []string{"clickhouse", "kafka", "postgres"}},
		{"dispatcher", []string{"kafka", "postgres"}},
	} {
		url := "http://" + runRoles(t, cfg, brokers, c.roles)
		status, _, body := call(t, "GET", url+"/readyz", "", nil)
		checks, _ := body["checks"].(map[string]any)
		if status != 200 || body["ready"] != true || !slices.Equal(slices.Sorted(maps.Keys(checks)), c.checks) {
			t.Errorf("%s: /readyz = %d %v, want 200, ready, checks %v", c.roles, status, body, c.checks)
		}
		for name, v := range checks {
			if v != "ok" {
				t.Errorf("%s: /readyz check %s = %v, want ok", c.roles, name, v)
			}
		}
		if status, _, body := call(t, "GET", url+"/healthz", "", nil); status != 200 {
			t.Errorf("%s: /healthz = %d %v, want 200", c.roles, status, body)
		}
	}
}

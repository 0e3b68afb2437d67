package main

import (
	"io"
	"net"
	nethttp "net/http"
	"regexp"
	"strings"
	"testing"
)

// TestDev_MetricsAddr: with --metrics-addr, /metrics is served there and
// no longer on the public port (without it, the public port serves it:
// TestDev_TicketTravelsTheWholeWay).
func TestDev_MetricsAddr(t *testing.T) {
	cfg := testConfig(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetricsAddr = l.Addr().String()
	l.Close()
	dev := startDev(t, cfg)

	resp, err := nethttp.Get(dev.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("public /metrics = %d, want 404", resp.StatusCode)
	}
	// Some activity of a tenant: a rule that fires, a ticket, a conflict.
	if status, _, body := call(t, "POST", dev.url+"/v1/automations", dev.key, []byte(`{"name": "urgent", "conditions": {"all": [{"field": "ticket.subject", "operator": "contains", "value": "down"}]}, "actions": [{"type": "set_priority", "value": "urgent"}]}`)); status != 201 {
		t.Fatalf("create rule: %d %v", status, body)
	}
	if status, _, body := call(t, "POST", dev.url+"/v1/tickets", dev.key, []byte(`{"subject": "site down", "customer": {"email": "m@example.com"}, "message": {"body": "help"}}`)); status != 201 {
		t.Fatalf("create ticket: %d %v", status, body)
	}
	resp, err = nethttp.Get("http://" + cfg.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "helpdeskflow_relay_lag_events") ||
		!strings.Contains(string(body), "helpdeskflow_automation_firings_total 1") {
		t.Errorf("metrics address /metrics = %d, %d bytes; want 200 with the helpdeskflow metrics and one firing", resp.StatusCode, len(body))
	}
	// No label carries a tenant's id (a workspace, key, rule or connection):
	// the series would grow with the tenants.
	uuidRE := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "helpdeskflow_") && uuidRE.MatchString(line) {
			t.Errorf("a metric is labelled with an id: %s", line)
		}
	}
}

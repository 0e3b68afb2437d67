package main

import (
	"bytes"
	"context"
	"fmt"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/projections"
)

// TestDev_OnBehalfOfInClickHouse: a change an admin key makes with
// X-HDF-On-Behalf-Of reaches ClickHouse's audit_log with channel agent and
// the agent as actor, through the relay and the projector.
func TestDev_OnBehalfOfInClickHouse(t *testing.T) {
	cfg := testConfig(t)
	dev := startDev(t, cfg)
	status, _, created := call(t, "POST", dev.url+"/v1/tickets", dev.key, []byte(`{"subject": "Agent at work",
		"customer": {"email": "ada@example.com"}, "message": {"body": "hi"}}`))
	if status != 201 {
		t.Fatalf("create: %d %v", status, created)
	}
	id := created["id"].(string)
	req, err := nethttp.NewRequest("PATCH", dev.url+"/v1/tickets/"+id, bytes.NewReader([]byte(`{"priority": "urgent"}`)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+dev.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-HDF-On-Behalf-Of", "agent 7 'Zoë'")
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PATCH on behalf of an agent: %d", resp.StatusCode)
	}

	ctx := context.Background()
	ch, err := projections.OpenClickHouse(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	testenv.Eventually(t, 30*time.Second, func() error {
		var actorType, actorID, channel string
		err := ch.QueryRow(ctx, `SELECT actor_type, actor_id, channel FROM audit_log FINAL
			WHERE stream_id = toUUID(?) AND version = 2`, id).Scan(&actorType, &actorID, &channel)
		if err != nil {
			return fmt.Errorf("the update is not in audit_log yet: %w", err)
		}
		if actorType != "agent" || actorID != "agent 7 'Zoë'" || channel != "agent" {
			t.Fatalf("audit_log has actor %s %q on channel %s, want agent \"agent 7 'Zoë'\" on agent", actorType, actorID, channel)
		}
		return nil
	})
}

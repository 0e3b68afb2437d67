package main

import (
	"context"
	"net/url"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/client"
)

// TestDev_ReadYourWrites: the whole binary (API, relay, projector on an
// embedded broker): create, then list with the create's X-HDF-Position,
// and see it at once, no polling.
func TestDev_ReadYourWrites(t *testing.T) {
	dev := startDev(t, testConfig(t))
	created, w, err := newAPIClient(t, dev).CreateTicket(context.Background(), client.TicketCreate{Subject: "See me",
		Customer: client.TicketCustomer{Email: "ryw@example.com"}, Message: client.TicketMessage{Body: "hi"}, Tags: []string{"ryw"}})
	position := w.Position
	if err != nil || position == "" {
		t.Fatalf("create: %v, position %q", err, position)
	}
	// The list's own X-HDF-Position is wire behaviour: the raw call.
	status, hdr, list := call(t, "GET", dev.url+"/v1/tickets?tag=ryw&max_wait=10&min_position="+url.QueryEscape(position), dev.key, nil)
	data, _ := list["data"].([]any)
	if status != 200 || len(data) != 1 || data[0].(map[string]any)["id"] != created.ID {
		t.Fatalf("list with min_position: status %d, body %v; want the ticket just created", status, list)
	}
	if hdr.Get("X-HDF-Position") == "" {
		t.Error("the list carries no X-HDF-Position")
	}
}

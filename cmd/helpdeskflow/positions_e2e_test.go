package main

import (
	"net/url"
	"testing"
)

// TestDev_ReadYourWrites: the whole binary (API, relay, projector on an
// embedded broker): create, then list with the create's X-HDF-Position,
// and see it at once, no polling.
func TestDev_ReadYourWrites(t *testing.T) {
	dev := startDev(t, testConfig(t))
	status, hdr, created := call(t, "POST", dev.url+"/v1/tickets", dev.key, []byte(`{"subject": "See me",
		"customer": {"email": "ryw@example.com"}, "message": {"body": "hi"}, "tags": ["ryw"]}`))
	position := hdr.Get("X-HDF-Position")
	if status != 201 || position == "" {
		t.Fatalf("create: status %d, position %q, body %v", status, position, created)
	}
	status, hdr, list := call(t, "GET", dev.url+"/v1/tickets?tag=ryw&max_wait=10&min_position="+url.QueryEscape(position), dev.key, nil)
	data, _ := list["data"].([]any)
	if status != 200 || len(data) != 1 || data[0].(map[string]any)["id"] != created["id"] {
		t.Fatalf("list with min_position: status %d, body %v; want the ticket just created", status, list)
	}
	if hdr.Get("X-HDF-Position") == "" {
		t.Error("the list carries no X-HDF-Position")
	}
}

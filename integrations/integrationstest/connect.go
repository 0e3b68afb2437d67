// Package integrationstest helps tests connect integrations through a fake
// OAuth provider.
package integrationstest

import (
	"context"
	"net/url"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/integrations"
)

// Connect runs the whole OAuth flow for the workspace's connection to
// provider (shop for Shopify): Connect, consent at the fake, Callback. It
// returns the connection, active, and fails t on any error.
func Connect(t testing.TB, m *integrations.Manager, fake *oauthtest.Server, workspaceID uuid.UUID, provider, shop string) helpdeskflow.Connection {
	t.Helper()
	ctx := context.Background()
	_, authURL, err := m.Connect(ctx, workspaceID, provider, shop)
	if err != nil {
		t.Fatal(err)
	}
	code, err := fake.Authorize(authURL)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Callback(ctx, provider, u.Query().Get("state"), code, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

package integrations_test

import (
	"reflect"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/integrations"
)

// TestPublicDetails: of a token answer's fields only the allow-listed
// identifiers are kept; tokens, also nested ones, never are.
func TestPublicDetails(t *testing.T) {
	slack := map[string]any{
		"app_id": "A1", "bot_user_id": "U1", "id_token": "eyJ.secret",
		"team":             map[string]any{"id": "T1", "name": "Acme", "icon": map[string]any{"url": "x"}},
		"authed_user":      map[string]any{"id": "U2", "scope": "chat:write", "access_token": "xoxp-secret", "refresh_token": "xoxe-secret"},
		"incoming_webhook": map[string]any{"url": "https://hooks.slack.com/services/T/B/secret"},
		"enterprise":       nil,
	}
	want := map[string]any{"app_id": "A1", "bot_user_id": "U1",
		"team": map[string]any{"id": "T1", "name": "Acme"}, "authed_user": map[string]any{"id": "U2", "scope": "chat:write"}}
	if got := integrations.PublicDetails("slack", slack); !reflect.DeepEqual(got, want) {
		t.Errorf("slack details = %v, want %v", got, want)
	}
	if got := integrations.PublicDetails("google", map[string]any{"id_token": "eyJ.secret"}); len(got) != 0 {
		t.Errorf("google details = %v, want none", got)
	}
	stripe := map[string]any{"stripe_user_id": "acct_1", "livemode": false, "stripe_publishable_key": "pk_live_x"}
	if got := integrations.PublicDetails("stripe", stripe); !reflect.DeepEqual(got, map[string]any{"stripe_user_id": "acct_1", "livemode": false}) {
		t.Errorf("stripe details = %v", got)
	}
}

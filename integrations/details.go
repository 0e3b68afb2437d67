package integrations

import (
	"strings"

	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
)

// publicTokenFields are the fields of a provider's token answer that are
// kept (as a connection's details) and shown by the API: identifiers and
// flags, never a token. An id_token, authed_user.access_token, Slack's
// incoming_webhook URL and whatever else a provider adds are dropped. A
// dotted path keeps one field of an object.
var publicTokenFields = map[string][]string{
	oauth.Google:  {},
	oauth.Slack:   {"app_id", "bot_user_id", "team.id", "team.name", "enterprise.id", "enterprise.name", "is_enterprise_install", "authed_user.id", "authed_user.scope"},
	oauth.Shopify: {"associated_user_scope", "associated_user.id", "associated_user.email"},
	oauth.Stripe:  {"stripe_user_id", "livemode"},
}

// PublicDetails returns the fields of extra (a token answer's fields
// beyond the tokens) that provider's allow-list keeps; strings, numbers
// and booleans only.
func PublicDetails(provider string, extra map[string]any) map[string]any {
	out := map[string]any{}
	for _, path := range publicTokenFields[provider] {
		parent, field, nested := strings.Cut(path, ".")
		v, ok := extra[parent]
		if nested {
			obj, isObj := v.(map[string]any)
			if !isObj {
				continue
			}
			v, ok = obj[field]
		}
		if !ok || !scalar(v) {
			continue
		}
		if !nested {
			out[parent] = v
			continue
		}
		obj, _ := out[parent].(map[string]any)
		if obj == nil {
			obj = map[string]any{}
			out[parent] = obj
		}
		obj[field] = v
	}
	return out
}

func scalar(v any) bool {
	switch v.(type) {
	case string, float64, bool, int, int64:
		return true
	}
	return false
}

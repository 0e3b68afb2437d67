package http_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup/profilelookuptest"
	"github.com/helpdeskflow/helpdeskflow/store/queues"
)

// connectGoogle runs the OAuth flow through the API against the fake
// provider and returns the callback's answer.
func (h *harness) connectGoogle() response { return h.connectOAuth("google") }

// connectOAuth runs provider's OAuth flow through the API: connect,
// consent at the fake provider, callback. It returns the callback's
// answer.
func (h *harness) connectOAuth(provider string) response {
	h.t.Helper()
	r := h.do("POST", "/v1/integrations/"+provider+"/connect", h.adminKey, nil)
	h.want(r, 201, "")
	authURL := r.body["authorization_url"].(string)
	code, err := h.oauth.Authorize(authURL)
	if err != nil {
		h.t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	return h.do("GET", "/v1/integrations/"+provider+"/callback?state="+url.QueryEscape(u.Query().Get("state"))+"&code="+url.QueryEscape(code), "", nil)
}

func TestIntegrations_OAuthFlow(t *testing.T) {
	h := newHarness(t)
	r := h.connectGoogle()
	h.want(r, 200, "")
	id := r.body["id"].(string)
	if r.body["status"] != "active" || r.body["explanation"] != "Working." || strings.Contains(r.raw, "at-") {
		t.Fatalf("callback: %s", r.raw)
	}
	list := h.do("GET", "/v1/integrations", h.adminKey, nil)
	if data := list.body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id {
		t.Errorf("list: %s", list.raw)
	}
	if g := h.do("GET", "/v1/integrations/"+id, h.adminKey, nil); g.body["provider"] != "google" || g.body["token_expires_at"] == nil {
		t.Errorf("get: %s", g.raw)
	}
	// The state authenticates the callback: a forged one is refused.
	h.want(h.do("GET", "/v1/integrations/google/callback?state=forged&code=x", "", nil), 400, "validation_failed")
	h.want(h.do("GET", "/v1/integrations/google/callback", "", nil), 400, "validation_failed")
	h.want(h.do("POST", "/v1/integrations/myspace/connect", h.adminKey, nil), 404, "not_found")
	h.want(h.do("POST", "/v1/integrations/"+id+"/revalidate", h.adminKey, nil), 404, "not_found")
	h.want(h.do("DELETE", "/v1/integrations/"+id, h.adminKey, nil), 200, "")
	h.want(h.do("GET", "/v1/integrations/"+id, h.adminKey, nil), 404, "not_found")
}

func TestIntegrations_OutlookConnect(t *testing.T) {
	h := newHarness(t)
	env := imapmailtest.Env(t)
	box := imapmailtest.NewMailbox(t, env)
	srv := imapmailtest.NewSMTPServer(t, imapmailtest.SMTPOptions{Username: env.User, Password: env.Password, NoTLS: true})
	settings := env.Settings(imapmail.SecurityNone, box)
	srv.Apply(&settings, imapmail.SecurityNone)

	// Bad fields are named, all at once.
	r := h.do("POST", "/v1/integrations/outlook/connect", h.adminKey, map[string]any{"imap_host": "https://x", "imap_port": 0, "smtp_security": "ssl"})
	h.want(r, 400, "validation_failed")
	for _, field := range []string{"imap_host", "smtp_host", "smtp_security", "password", "username"} {
		if !strings.Contains(r.raw, `"`+field+`"`) {
			t.Errorf("no problem named for %s: %s", field, r.raw)
		}
	}
	// A refused login names the password.
	wrong := settings
	wrong.Password = "nope"
	r = h.do("POST", "/v1/integrations/outlook/connect", h.adminKey, wrong)
	h.want(r, 400, "validation_failed")
	if !strings.Contains(r.raw, `"field":"password"`) || !strings.Contains(r.raw, "authentication failed") {
		t.Fatalf("wrong password: %s", r.raw)
	}
	r = h.do("POST", "/v1/integrations/outlook/connect", h.adminKey, settings)
	h.want(r, 201, "")
	conn := r.body["connection"].(map[string]any)
	if r.body["authorization_url"] != nil || conn["status"] != "active" || conn["provider"] != "outlook" || strings.Contains(r.raw, env.Password) ||
		conn["details"].(map[string]any)["imap_host"] != settings.IMAPHost {
		t.Fatalf("connected: %s", r.raw)
	}
	id := conn["id"].(string)
	// Sync now: the mailbox is due at once.
	r = h.do("POST", "/v1/integrations/"+id+"/sync", h.adminKey, nil)
	h.want(r, 202, "")
	if r.body["next_sync_at"] == nil || r.body["sync_failures"] != float64(0) {
		t.Fatalf("sync now: %s", r.raw)
	}
	// Connecting the same address again keeps the connection.
	r = h.do("POST", "/v1/integrations/outlook/connect", h.adminKey, settings)
	h.want(r, 201, "")
	if r.body["connection"].(map[string]any)["id"] != id {
		t.Fatalf("reconnect made a new connection: %s", r.raw)
	}
}

func TestIntegrations_SyncNowOnlyForMailboxes(t *testing.T) {
	h := newHarness(t)
	google := h.connectGoogle().body["id"].(string)
	h.want(h.do("POST", "/v1/integrations/"+google+"/sync", h.adminKey, nil), 202, "")
	stripe := h.connectStripe("acct_1SYNC")
	h.want(h.do("POST", "/v1/integrations/"+stripe+"/sync", h.adminKey, nil), 409, "conflict")
	h.want(h.do("POST", "/v1/integrations/slack/sync", h.adminKey, nil), 404, "not_found")
	h.want(h.do("POST", "/v1/integrations/"+google+"/sync", h.agentKey(), nil), 403, "forbidden")
}

// connectStripe connects the workspace's Stripe account through the API
// and the fake OAuth server, lets the fake Stripe API accept its token and
// returns the connection id.
func (h *harness) connectStripe(account string) string {
	h.t.Helper()
	h.oauth.SetExtra(map[string]any{"stripe_user_id": account})
	r := h.connectOAuth("stripe")
	h.want(r, 200, "")
	id := r.body["id"].(string)
	token, err := h.connections.AccessToken(context.Background(), h.workspace, uuid.MustParse(id))
	if err != nil {
		h.t.Fatal(err)
	}
	h.shops.SetToken("stripe", account, token)
	return id
}

func TestCustomers_LinkedProfilesRefresh(t *testing.T) {
	h := newHarness(t)
	c := h.do("POST", "/v1/customers", h.adminKey, map[string]any{"email": "ann@example.com"})
	id := c.body["id"].(string)
	h.want(h.do("POST", "/v1/customers/"+id+"/linked-profiles/refresh", h.adminKey, nil), 409, "conflict")
	stripe := h.connectStripe("acct_1ANN")
	h.shops.AddStripeCustomer("acct_1ANN", profilelookuptest.StripeCustomer{ID: "cus_ann", Email: "ann@example.com"},
		profilelookuptest.StripeSubscription{Status: "trialing", PriceNickname: "Team"})
	r := h.do("POST", "/v1/customers/"+id+"/linked-profiles/refresh", h.agentKey(), nil)
	h.want(r, 200, "")
	results := r.body["results"].([]any)
	res := results[0].(map[string]any)
	if len(results) != 1 || res["status"] != "linked" || res["integration_id"] != stripe || res["external_id"] != "cus_ann" {
		t.Fatalf("results: %s", r.raw)
	}
	profiles := r.body["customer"].(map[string]any)["linked_profiles"].([]any)
	if len(profiles) != 1 || profiles[0].(map[string]any)["data"].(map[string]any)["subscription_status"] != "trialing" {
		t.Fatalf("profiles: %s", r.raw)
	}
	h.want(h.do("POST", "/v1/customers/"+uuid.NewString()+"/linked-profiles/refresh", h.adminKey, nil), 404, "not_found")
}

// agentKey creates an agent (non-admin) API key in the workspace.
func (h *harness) agentKey() string {
	h.t.Helper()
	r := h.do("POST", "/v1/api-keys", h.adminKey, map[string]any{"role": "agent", "name": "agent"})
	h.want(r, 201, "")
	return r.body["key"].(string)
}

// queueJobs queues n integration jobs of the workspace's connection (for
// Slack, the workspace id) and makes the first fail: for good when final,
// else with a retry.
func (h *harness) queueJobs(workspace, connection uuid.UUID, n int, final bool) {
	h.t.Helper()
	ctx := context.Background()
	now := time.Now()
	var jobs []helpdeskflow.IntegrationJob
	for i := range n {
		// The first is due before any other job still due, so the claim
		// below takes it.
		at := now.Add(-time.Minute)
		if i == 0 {
			at = now.Add(-time.Hour)
		}
		jobs = append(jobs, helpdeskflow.IntegrationJob{ID: uuid.New(), WorkspaceID: workspace, ConnectionID: connection,
			Kind: helpdeskflow.JobProfileLookup, EventID: uuid.New(), Payload: []byte(`{}`), CreatedAt: at})
	}
	if err := h.store.EnqueueJobs(ctx, jobs); err != nil {
		h.t.Fatal(err)
	}
	claimed, err := h.store.ClaimJobs(ctx, now, 1, 1, nil, time.Minute)
	if err != nil || len(claimed) != 1 {
		h.t.Fatalf("claim: %v %d", err, len(claimed))
	}
	f := queues.FinishedJob{ID: claimed[0].ID, Attempt: 1, Status: helpdeskflow.JobFailed, Outcome: "rate_limited",
		ErrorClass: "rate_limited", Error: "HTTP 429 (retry after 2s)", At: now}
	if !final {
		next := now.Add(time.Minute)
		f.Status, f.Outcome, f.NextAttemptAt = helpdeskflow.JobPending, "", &next
	}
	if err := h.store.FinishJobs(ctx, []queues.FinishedJob{f}); err != nil {
		h.t.Fatal(err)
	}
}

func TestIntegrations_QueueShowsPendingAndFailedCalls(t *testing.T) {
	h := newHarness(t)
	stripe := h.connectStripe("acct_1QUEUE")
	if q := h.do("GET", "/v1/integrations/"+stripe, h.adminKey, nil).body["queue"]; fmt.Sprint(q) != "map[failed_last_24h:0 last_failure:<nil> oldest_pending_at:<nil> pending:0]" {
		t.Fatalf("an empty queue: %v", q)
	}
	h.queueJobs(h.workspace, uuid.MustParse(stripe), 3, true)
	other, _ := h.newWorkspace()
	h.queueJobs(other, uuid.MustParse(stripe), 5, true) // another workspace's rows never show
	r := h.do("GET", "/v1/integrations/"+stripe, h.adminKey, nil)
	h.want(r, 200, "")
	q := r.body["queue"].(map[string]any)
	failure, _ := q["last_failure"].(map[string]any)
	if q["pending"] != 2.0 || q["failed_last_24h"] != 1.0 || q["oldest_pending_at"] == nil || failure == nil ||
		failure["final"] != true || failure["error_class"] != "rate_limited" || failure["kind"] != "profile_lookup" || failure["at"] == nil {
		t.Fatalf("queue: %s", r.raw)
	}

	// Slack's queue is the workspace's, shown on slack and in the list.
	h.want(h.do("PUT", "/v1/integrations/slack", h.adminKey, map[string]any{"bot_token": "xoxb-test-token",
		"channels": map[string]any{"new_ticket": "#support"}}), 200, "")
	h.queueJobs(h.workspace, h.workspace, 1, false)
	r = h.do("GET", "/v1/integrations/slack", h.adminKey, nil)
	q = r.body["queue"].(map[string]any)
	if failure, _ := q["last_failure"].(map[string]any); q["pending"] != 1.0 || q["failed_last_24h"] != 0.0 || failure["final"] != false {
		t.Fatalf("Slack's queue: %s", r.raw)
	}
	list := h.do("GET", "/v1/integrations", h.adminKey, nil)
	queues := map[string]float64{}
	for _, item := range list.body["data"].([]any) {
		in := item.(map[string]any)
		queues[in["id"].(string)] = in["queue"].(map[string]any)["pending"].(float64)
	}
	if len(queues) != 2 || queues[stripe] != 2 || queues["slack"] != 1 {
		t.Fatalf("list: %s", list.raw)
	}
}

// TestIntegrations_TokenAnswerSecretsNeverShown: of the provider's token
// answer only public identifiers are kept and shown; an id_token, a
// user's access token or a webhook URL never are (they used to be stored
// as the connection's details and returned by GET /v1/integrations).
func TestIntegrations_TokenAnswerSecretsNeverShown(t *testing.T) {
	h := newHarness(t)
	h.oauth.SetExtra(map[string]any{"id_token": "eyJ.id-token-secret", "team": map[string]any{"id": "T1", "name": "Acme"},
		"authed_user":      map[string]any{"id": "U1", "access_token": "xoxp-user-secret"},
		"incoming_webhook": map[string]any{"url": "https://hooks.slack.example/services/hook-secret"}})
	r := h.connectGoogle()
	h.want(r, 200, "")
	id := r.body["id"].(string)
	for _, answer := range []response{r, h.do("GET", "/v1/integrations/"+id, h.adminKey, nil), h.do("GET", "/v1/integrations", h.adminKey, nil)} {
		for _, secret := range []string{"id-token-secret", "xoxp-user-secret", "hook-secret"} {
			if strings.Contains(answer.raw, secret) {
				t.Errorf("an answer shows %s: %s", secret, answer.raw)
			}
		}
	}
	var details string
	if err := h.db.Pool().QueryRow(context.Background(), `SELECT details::text FROM integration_connections WHERE id = $1`, id).Scan(&details); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(details, "secret") {
		t.Errorf("stored details hold a secret: %s", details)
	}
}

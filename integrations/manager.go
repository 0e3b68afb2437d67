package integrations

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/commands/outbound"
)

// Sealer encrypts tokens at rest and opens them (secretbox.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Config configures a Manager. Store, Sealer, Providers and StateKey are
// required; HTTPClient defaults to one with an 8-second timeout, Now to
// time.Now, RefreshMargin to oauth.DefaultRefreshMargin, RefreshTimeout
// to DefaultRefreshTimeout.
type Config struct {
	Store         Store
	Sealer        Sealer
	Providers     map[string]oauth.Provider
	StateKey      []byte
	HTTPClient    *http.Client
	Now           func() time.Time
	RefreshMargin time.Duration
	// RefreshTimeout bounds a token refresh's request to the provider,
	// and again the write of its outcome. A refresh's lease lasts twice
	// as long, so a process that dies mid-refresh keeps others waiting no
	// longer than that; callers that find a refresh under way wait for it
	// as long at most.
	RefreshTimeout time.Duration
	// OnRefresh, when set, is told the outcome of every token refresh
	// ("ok", "invalid_grant", "invalid_client", "temporary", "error"), for
	// metrics.
	OnRefresh func(provider, outcome string)
	// IMAPOptions configure the IMAP/SMTP clients of Outlook connections:
	// the outbound address policy (imapmail.WithPolicy; without it, public
	// addresses only), a logger, test CAs.
	IMAPOptions []imapmail.Option
}

// DefaultRefreshTimeout is Config.RefreshTimeout's default.
const DefaultRefreshTimeout = 10 * time.Second

// refreshPoll is how often a caller waiting for another process's refresh
// looks for its outcome.
const refreshPoll = 50 * time.Millisecond

// Manager runs OAuth connections. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	states *oauth.StateSigner
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Sealer == nil || len(cfg.StateKey) < oauth.MinStateKeyLen {
		return nil, helpdeskflow.Errorf(helpdeskflow.EValidation, "integrations: Config needs Store, Sealer and a StateKey of at least %d bytes", oauth.MinStateKeyLen)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 8 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RefreshTimeout <= 0 {
		cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	return &Manager{cfg: cfg, states: oauth.NewStateSigner(cfg.StateKey)}, nil
}

func (m *Manager) now() time.Time { return m.cfg.Now().UTC().Truncate(time.Microsecond) }

func (m *Manager) provider(name, shop string) (oauth.Provider, error) {
	p, ok := m.cfg.Providers[name]
	if !ok {
		var known []string
		for k := range m.cfg.Providers {
			known = append(known, k)
		}
		return p, helpdeskflow.Errorf(helpdeskflow.ENotFound, "no integration provider %q is configured (configured: %s)", name, strings.Join(known, ", "))
	}
	if name == oauth.Shopify {
		return p.ForShop(shop)
	}
	return p, nil
}

// Connect starts connecting the workspace to provider (shop names the
// Shopify shop): it returns the connection, pending until the callback
// (or the connection to reconnect: a workspace's existing connection to
// the same provider and account keeps its id, so its syncs resume where
// they stopped), and the provider's authorization URL to send the user to.
// The URL's state is sealed and names the workspace and the connection,
// with the PKCE verifier inside; it expires after oauth.StateLifetime.
// Slack is connected with ConnectSlack (it needs its channels).
func (m *Manager) Connect(ctx context.Context, workspaceID uuid.UUID, provider, shop string) (helpdeskflow.Connection, string, error) {
	if provider == oauth.Slack {
		return helpdeskflow.Connection{}, "", &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "connecting Slack needs the channels to notify",
			Details: []helpdeskflow.FieldProblem{{Field: "channels", Problem: "required"}}}
	}
	return m.connect(ctx, workspaceID, provider, shop, "")
}

// ConnectSlack starts installing the HelpDeskFlow Slack app in the
// workspace's Slack through OAuth v2, as Connect does for other providers:
// the callback's bot token becomes the workspace's Slack integration (the
// one notifications post with, sealed like every token), with these
// channels (validated as for a pasted token: EValidation naming each bad
// one). A workspace has one Slack integration: while one with a pasted bot
// token exists, this is EConflict naming it (disconnect it first; the
// pasted token stays the way to connect a self-hosted Slack app). A Slack
// installed through OAuth before is reinstalled (same connection id), its
// channels replaced.
func (m *Manager) ConnectSlack(ctx context.Context, workspaceID uuid.UUID, channels helpdeskflow.SlackChannels) (helpdeskflow.Connection, string, error) {
	if err := outbound.ValidateSlackChannels(&channels); err != nil {
		return helpdeskflow.Connection{}, "", err
	}
	err := m.cfg.Store.Transact(ctx, func(tx Tx) error {
		existing, _, err := tx.LockSlackIntegration(ctx, workspaceID)
		switch {
		case err == nil && existing.Source() == helpdeskflow.SlackSourceToken:
			return outbound.SlackInstalledConflict(existing)
		case helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound:
			return nil
		}
		return err
	})
	if err != nil {
		return helpdeskflow.Connection{}, "", err
	}
	data, err := json.Marshal(channels)
	if err != nil {
		return helpdeskflow.Connection{}, "", err
	}
	return m.connect(ctx, workspaceID, oauth.Slack, "", string(data))
}

// connect is Connect, handing data to the callback in the state.
func (m *Manager) connect(ctx context.Context, workspaceID uuid.UUID, provider, shop, data string) (helpdeskflow.Connection, string, error) {
	p, err := m.provider(provider, shop)
	if err != nil {
		return helpdeskflow.Connection{}, "", err
	}
	existing, err := m.cfg.Store.Connections(ctx, workspaceID)
	if err != nil {
		return helpdeskflow.Connection{}, "", err
	}
	now := m.now()
	c := helpdeskflow.Connection{ID: uuid.New(), WorkspaceID: workspaceID, Provider: provider, Status: helpdeskflow.ConnectionPending,
		Account: p.Shop, CreatedAt: now, UpdatedAt: now}
	reconnect := false
	for _, e := range existing {
		if e.Provider == provider && (p.Shop == "" || e.Account == p.Shop) {
			c, reconnect = e, true
			break
		}
	}
	if !reconnect {
		if err := m.cfg.Store.Transact(ctx, func(tx Tx) error { tx.CreateConnection(ctx, c); return nil }); err != nil {
			return helpdeskflow.Connection{}, "", err
		}
	}
	verifier := ""
	if p.PKCE {
		verifier = oauth.NewVerifier()
	}
	state, err := m.states.Sign(oauth.State{WorkspaceID: workspaceID, ConnectionID: c.ID, Provider: provider, Verifier: verifier,
		Shop: p.Shop, Data: data, ExpiresAt: now.Add(oauth.StateLifetime)})
	if err != nil {
		return helpdeskflow.Connection{}, "", err
	}
	return c, oauth.AuthorizationURL(p, state, verifier), nil
}

// Callback finishes a connection from the provider's redirect: state
// authenticates it (it must be one Connect made, for this provider, not
// expired); providerError is the redirect's error parameter (the user
// declined). The code is exchanged for tokens, which are stored sealed;
// the connection becomes active and integration.connected is recorded.
// For Slack the bot token also becomes the workspace's Slack integration
// in the same transaction (see ConnectSlack): EConflict, and nothing
// stored, if a pasted-token integration appeared meanwhile.
func (m *Manager) Callback(ctx context.Context, provider, state, code, providerError string) (helpdeskflow.Connection, error) {
	st, err := m.states.Verify(state, m.cfg.Now())
	if err != nil {
		return helpdeskflow.Connection{}, err
	}
	if err := st.Check(provider, uuid.Nil); err != nil {
		return helpdeskflow.Connection{}, err
	}
	if providerError != "" {
		m.recordFailure(ctx, st.WorkspaceID, st.ConnectionID, "", "authorization_denied", "the provider said "+providerError+" when asked for access")
		return helpdeskflow.Connection{}, helpdeskflow.Errorf(helpdeskflow.EValidation, "the provider refused access: %s", providerError)
	}
	if code == "" {
		return helpdeskflow.Connection{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the callback has no code",
			Details: []helpdeskflow.FieldProblem{{Field: "code", Problem: "required"}}}
	}
	p, err := m.provider(provider, st.Shop)
	if err != nil {
		return helpdeskflow.Connection{}, err
	}
	token, err := oauth.Exchange(ctx, p, code, st.Verifier, m.cfg.HTTPClient)
	if err != nil {
		m.recordFailure(ctx, st.WorkspaceID, st.ConnectionID, "", failureClass(err), "exchanging the code failed: "+err.Error())
		return helpdeskflow.Connection{}, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the provider did not accept the authorization code; start connecting again", Err: err}
	}
	var out helpdeskflow.Connection
	err = m.cfg.Store.Transact(ctx, func(tx Tx) error {
		c, _, err := tx.LockConnection(ctx, st.WorkspaceID, st.ConnectionID)
		if err != nil {
			return err
		}
		now := m.now()
		tokens, err := m.seal(c, token)
		if err != nil {
			return err
		}
		c.Status, c.Scopes, c.Details, c.UpdatedAt = helpdeskflow.ConnectionActive, token.Scope, PublicDetails(provider, token.Extra), now
		c.LastError, c.LastErrorClass, c.NextRetryAt = "", "", nil
		if !token.Expiry.IsZero() {
			exp := token.Expiry.UTC()
			c.TokenExpiry = &exp
		}
		if c.Account == "" {
			c.Account = accountOf(provider, token.Extra)
		}
		if err := tx.StoreTokens(ctx, c, tokens, now); err != nil {
			return err
		}
		if provider == oauth.Slack {
			if err := m.installSlack(ctx, tx, c, token, st.Data, now); err != nil {
				return err
			}
		}
		tx.ResumeSync(ctx, c.ID)
		out = c
		return appendWorkspaceEvent(ctx, tx, st.WorkspaceID, userMetadata(), helpdeskflow.EventIntegrationConnected,
			helpdeskflow.IntegrationChanged{Provider: provider, Team: c.Account}, now)
	})
	return out, err
}

// installSlack makes Slack connection c's bot token (token, from the
// OAuth v2 answer) the workspace's Slack integration, sealed as a pasted
// one is, with the channels ConnectSlack put in the state (data); it
// replaces an integration installed through OAuth before, and refuses
// (EConflict) to replace a pasted one.
func (m *Manager) installSlack(ctx context.Context, tx Tx, c helpdeskflow.Connection, token oauth.Token, data string, now time.Time) error {
	existing, _, err := tx.LockSlackIntegration(ctx, c.WorkspaceID)
	switch {
	case err == nil && existing.Source() == helpdeskflow.SlackSourceToken:
		return outbound.SlackInstalledConflict(existing)
	case err != nil && helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound:
		return err
	}
	in := helpdeskflow.SlackIntegration{WorkspaceID: c.WorkspaceID, Channels: existing.Channels, Status: helpdeskflow.IntegrationActive,
		ConnectionID: c.ID, ConnectedAt: now, UpdatedAt: now}
	if data != "" {
		if err := json.Unmarshal([]byte(data), &in.Channels); err != nil {
			return &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the authorization's state holds no Slack channels; start connecting again", Err: err}
		}
	}
	if team, ok := token.Extra["team"].(map[string]any); ok {
		in.TeamID, _ = team["id"].(string)
		in.Team, _ = team["name"].(string)
	}
	sealed, err := m.cfg.Sealer.Seal([]byte(token.AccessToken), helpdeskflow.SlackTokenAAD(c.WorkspaceID))
	if err != nil {
		return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "seal Slack token", Err: err}
	}
	return tx.PutSlackIntegration(ctx, in, sealed)
}

// accountOf names the connected account from what the token answer said.
func accountOf(provider string, extra map[string]any) string {
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := extra[k].(string); ok && v != "" {
				return v
			}
		}
		return ""
	}
	switch provider {
	case oauth.Stripe:
		return pick("stripe_user_id")
	case oauth.Slack:
		if team, ok := extra["team"].(map[string]any); ok {
			if name, ok := team["name"].(string); ok {
				return name
			}
		}
	}
	return pick("email", "account")
}

// seal seals a token answer's tokens for connection c (a missing refresh
// token stays nil, keeping the stored one).
func (m *Manager) seal(c helpdeskflow.Connection, t oauth.Token) (helpdeskflow.ConnectionTokens, error) {
	var out helpdeskflow.ConnectionTokens
	var err error
	if out.Access, err = m.cfg.Sealer.Seal([]byte(t.AccessToken), helpdeskflow.ConnectionTokenAAD(c.WorkspaceID, c.ID, "access")); err != nil {
		return out, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "seal access token", Err: err}
	}
	if t.RefreshToken != "" && t.Rotated {
		if out.Refresh, err = m.cfg.Sealer.Seal([]byte(t.RefreshToken), helpdeskflow.ConnectionTokenAAD(c.WorkspaceID, c.ID, "refresh")); err != nil {
			return out, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "seal refresh token", Err: err}
		}
	}
	return out, nil
}

// AccessToken returns a usable access token of connection id, refreshing
// it first when it expires within the refresh margin. No transaction stays
// open across the provider's answer: a refresh takes the connection's
// refresh lease (one refresh per connection at a time across processes),
// asks the provider (bounded by RefreshTimeout), then stores the new
// tokens, a rotated refresh token in the same statement, only over the
// tokens it started from. Concurrent callers (in any process) wait for
// that refresh and use its token; when it fails, or has not ended within
// twice RefreshTimeout, they use the current token while it has not
// expired. A lease whose process died runs out after twice
// RefreshTimeout and the next caller refreshes. Errors: EConflict when the
// connection is not active (token_expired: the user must reconnect; it is
// never retried), EUnavailable for a temporary failure (recorded on the
// connection with when to try again) or a refresh elsewhere that did not
// give a token, ENotFound for an unknown one.
func (m *Manager) AccessToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error) {
	return m.accessToken(ctx, workspaceID, id, false)
}

// RefreshToken refreshes connection id's access token now, whatever its
// expiry (a provider answered 401 to a token that should still be good:
// it was revoked, or the provider rotated it), with AccessToken's leasing
// and errors; tokens stored by another refresh after the call began are
// taken as the refreshed ones. An invalid_grant answer marks the
// connection token_expired.
func (m *Manager) RefreshToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error) {
	return m.accessToken(ctx, workspaceID, id, true)
}

// accessToken reads the connection (locking nothing) until it can answer:
// with the stored token when it is fresh, or was stored since the call
// began; with its own refresh when it gets the lease; after waiting for
// the refresh of whoever holds the lease otherwise.
func (m *Manager) accessToken(ctx context.Context, workspaceID, id uuid.UUID, force bool) (string, error) {
	startVersion := int64(-1)
	waited := false
	var waitingFor uuid.UUID
	waitUntil := time.Now().Add(m.leaseDuration())
	for {
		c, tokens, err := m.cfg.Store.ConnectionTokens(ctx, workspaceID, id)
		if err != nil {
			return "", err
		}
		if c.Status != helpdeskflow.ConnectionActive {
			return "", notActive(c)
		}
		if startVersion < 0 {
			startVersion = tokens.Version
		}
		now := m.now()
		expiring := c.TokenExpiry != nil && oauth.NeedsRefresh(*c.TokenExpiry, now, m.cfg.RefreshMargin)
		if tokens.Version != startVersion || (!expiring && !force) {
			return m.openAccess(c, tokens)
		}
		switch {
		case waited && tokens.Lease == (helpdeskflow.RefreshLease{}):
			// The refresh waited for ended without new tokens.
			return m.fallback(c, tokens, now, force)
		case !tokens.Lease.Until.After(now):
			answer := m.refresh(ctx, c, tokens, now)
			switch answer.step {
			case refreshed:
				return answer.access, answer.err
			case takenOver:
				waited, waitUntil = true, time.Now().Add(m.leaseDuration())
			}
		default:
			if tokens.Lease.Token != waitingFor {
				// Another refresh is under way: wait for it at most as
				// long as its lease may last.
				waitingFor, waitUntil = tokens.Lease.Token, time.Now().Add(m.leaseDuration())
			}
			waited = true
		}
		if time.Now().After(waitUntil) {
			return m.fallback(c, tokens, now, force)
		}
		select {
		case <-ctx.Done():
			return "", &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "waiting for a token refresh", Err: ctx.Err()}
		case <-time.After(refreshPoll):
		}
	}
}

// leaseDuration is how long a refresh's lease lasts: its request and the
// write of its outcome.
func (m *Manager) leaseDuration() time.Duration { return 2 * m.cfg.RefreshTimeout }

// notActive is the error for a connection that is not active.
func notActive(c helpdeskflow.Connection) error {
	return helpdeskflow.Errorf(helpdeskflow.EConflict, "integration %s is %s: %s", c.ID, c.Status, Explain(c))
}

// openAccess opens c's stored access token.
func (m *Manager) openAccess(c helpdeskflow.Connection, tokens helpdeskflow.ConnectionTokens) (string, error) {
	plain, err := m.cfg.Sealer.Open(tokens.Access, helpdeskflow.ConnectionTokenAAD(c.WorkspaceID, c.ID, "access"))
	if err != nil {
		return "", &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "open the access token (was HDF_SECRET_KEYS changed?)", Err: err}
	}
	return string(plain), nil
}

// fallback answers a caller whose wait for another process's refresh
// ended without new tokens: the current token while it has not expired
// (unless the caller was told it is refused), EUnavailable otherwise.
func (m *Manager) fallback(c helpdeskflow.Connection, tokens helpdeskflow.ConnectionTokens, now time.Time, force bool) (string, error) {
	if !force && c.TokenExpiry != nil && now.Before(*c.TokenExpiry) {
		return m.openAccess(c, tokens)
	}
	if c.LastErrorClass == "temporary" && c.NextRetryAt != nil {
		return "", helpdeskflow.Errorf(helpdeskflow.EUnavailable, "the provider is unavailable; try again after %s", c.NextRetryAt.Format(time.RFC3339))
	}
	return "", helpdeskflow.Errorf(helpdeskflow.EUnavailable, "integration %s: another process is refreshing its token; try again shortly", c.ID)
}

// refreshAnswer is what a refresh tells its caller: the access token or
// the error to answer with, or another step to take.
type refreshAnswer struct {
	access string
	err    error
	step   refreshStep
}

// refreshStep says what a caller of refresh does next.
type refreshStep int

const (
	// refreshed: refresh's answer is the caller's.
	refreshed refreshStep = iota
	// leaseBusy: the lease could not be taken (another process was
	// quicker, or the tokens changed): read the connection again.
	leaseBusy
	// takenOver: this refresh failed after another process took its
	// lease over: that process's outcome is the one to wait for.
	takenOver
)

// refresh refreshes c's tokens (read at tokens.Version) if it can take the
// refresh lease: the request to the provider runs outside any transaction,
// then a short transaction records the outcome (record).
func (m *Manager) refresh(ctx context.Context, c helpdeskflow.Connection, tokens helpdeskflow.ConnectionTokens, now time.Time) refreshAnswer {
	p, err := m.provider(c.Provider, c.Account)
	if err != nil {
		return refreshAnswer{err: err}
	}
	var refreshToken []byte
	if tokens.Refresh != nil {
		if refreshToken, err = m.cfg.Sealer.Open(tokens.Refresh, helpdeskflow.ConnectionTokenAAD(c.WorkspaceID, c.ID, "refresh")); err != nil {
			return refreshAnswer{err: &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "open the refresh token (was HDF_SECRET_KEYS changed?)", Err: err}}
		}
	}
	a := attempt{version: tokens.Version, lease: uuid.New()}
	taken, err := m.cfg.Store.TakeRefreshLease(ctx, c.ID, tokens.Version, helpdeskflow.RefreshLease{Token: a.lease, Until: now.Add(m.leaseDuration())}, now)
	if err != nil {
		return refreshAnswer{err: err}
	}
	if !taken {
		return refreshAnswer{step: leaseBusy}
	}

	callCtx, cancel := context.WithTimeout(ctx, m.cfg.RefreshTimeout)
	a.token, a.err = oauth.Refresh(callCtx, p, string(refreshToken), m.cfg.HTTPClient)
	cancel()
	a.abandoned = a.err != nil && ctx.Err() != nil
	if m.cfg.OnRefresh != nil && !a.abandoned {
		outcome := "ok"
		if a.err != nil {
			outcome = failureClass(a.err)
		}
		m.cfg.OnRefresh(c.Provider, outcome)
	}
	if a.err == nil {
		if a.sealed, err = m.seal(c, a.token); err != nil {
			return refreshAnswer{err: err}
		}
	}
	// The outcome is written even when the caller gave up meanwhile: a
	// rotated refresh token that is not stored is lost, and the old one
	// is dead.
	writeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.RefreshTimeout)
	defer cancel()
	var answer refreshAnswer
	err = m.cfg.Store.Transact(writeCtx, func(tx Tx) error {
		cur, curTokens, err := tx.LockConnection(writeCtx, c.WorkspaceID, c.ID)
		if err != nil {
			return err
		}
		tx.EndRefreshLease(writeCtx, c.ID, a.lease)
		answer, err = m.record(writeCtx, tx, cur, curTokens, a)
		return err
	})
	if err != nil {
		return refreshAnswer{err: err}
	}
	return answer
}

// attempt is one refresh at the provider, to record.
type attempt struct {
	// version is the token version the refresh started from, lease its
	// lease's token.
	version int64
	lease   uuid.UUID
	// token is what the provider issued (sealed: its tokens sealed), err
	// why it issued nothing.
	token  oauth.Token
	sealed helpdeskflow.ConnectionTokens
	err    error
	// abandoned: the caller gave up before the provider answered, which
	// says nothing about the grant.
	abandoned bool
}

// record records refresh a on cur, the connection as it is now (locked in
// tx), and returns the caller's answer; its error ends tx. It writes only
// over the tokens a started from: tokens stored meanwhile (by a refresh
// that took over an expired lease, or a reconnect) win, and a failure is
// recorded only while a still holds its lease, because a refresh token
// used twice may be refused only because the other use rotated it.
func (m *Manager) record(ctx context.Context, tx Tx, cur helpdeskflow.Connection, curTokens helpdeskflow.ConnectionTokens, a attempt) (refreshAnswer, error) {
	now := m.now()
	switch {
	case cur.Status != helpdeskflow.ConnectionActive:
		return refreshAnswer{err: notActive(cur)}, nil
	case curTokens.Version != a.version:
		access, err := m.openAccess(cur, curTokens)
		return refreshAnswer{access: access, err: err}, nil
	case a.err == nil:
		// Stored even when another process took the lease over: these
		// are the newest tokens, and a rotated refresh token must not be
		// lost.
		if !a.token.Expiry.IsZero() {
			exp := a.token.Expiry.UTC()
			cur.TokenExpiry = &exp
		}
		if a.token.Scope != "" {
			cur.Scopes = a.token.Scope
		}
		if err := tx.StoreTokens(ctx, cur, a.sealed, now); err != nil {
			return refreshAnswer{}, err
		}
		return refreshAnswer{access: a.token.AccessToken}, nil
	case curTokens.Lease.Token != a.lease:
		return refreshAnswer{step: takenOver}, nil
	case a.abandoned:
		return refreshAnswer{err: &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "the token refresh was abandoned", Err: a.err}}, nil
	}
	switch oauth.Classify(a.err) {
	case oauth.FailureInvalidGrant:
		msg := "the provider no longer accepts this connection's grant (revoked or expired): " + a.err.Error()
		if err := expire(ctx, tx, cur, "invalid_grant", msg, now); err != nil {
			return refreshAnswer{}, err
		}
		return refreshAnswer{err: helpdeskflow.Errorf(helpdeskflow.EConflict, "integration %s: %s; reconnect it", cur.ID, msg)}, nil
	case oauth.FailureTemporary:
		retry := now.Add(oauth.RetryDelay(a.err, 1))
		tx.SetConnectionStatus(ctx, cur.ID, helpdeskflow.ConnectionActive, "temporary", "refreshing the token failed, retried later: "+a.err.Error(), &retry, now)
		return refreshAnswer{err: &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: fmt.Sprintf("the provider is unavailable; try again after %s", retry.Format(time.RFC3339)), Err: a.err}}, nil
	}
	class := failureClass(a.err)
	tx.SetConnectionStatus(ctx, cur.ID, helpdeskflow.ConnectionNeedsRevalidation, class, "refreshing the token failed: "+a.err.Error(), nil, now)
	return refreshAnswer{err: helpdeskflow.Errorf(helpdeskflow.EConflict, "integration %s needs attention: %v", cur.ID, a.err)}, nil
}

// expire marks c token_expired, which stops its syncs until it is
// reconnected, and records integration.token_expired.
func expire(ctx context.Context, tx Tx, c helpdeskflow.Connection, class, msg string, now time.Time) error {
	return stop(ctx, tx, c, helpdeskflow.ConnectionTokenExpired, class, msg, now)
}

// stopEvents are the events recording that a connection stopped, by the
// status it stopped in.
var stopEvents = map[string]string{
	helpdeskflow.ConnectionTokenExpired:      helpdeskflow.EventIntegrationTokenExpired,
	helpdeskflow.ConnectionNeedsRevalidation: helpdeskflow.EventIntegrationNeedsRevalidation,
}

// stop moves c to status (token_expired or needs_revalidation), which
// stops its syncs until it is reconnected, with the failure's class and
// message, and records the matching integration event so that webhooks
// and Slack can tell people.
func stop(ctx context.Context, tx Tx, c helpdeskflow.Connection, status, class, msg string, now time.Time) error {
	event, ok := stopEvents[status]
	if !ok {
		return helpdeskflow.Errorf(helpdeskflow.EInternal, "integrations: %q is not a status a connection stops in", status)
	}
	tx.SetConnectionStatus(ctx, c.ID, status, class, msg, nil, now)
	return appendWorkspaceEvent(ctx, tx, c.WorkspaceID, systemMetadata(), event,
		helpdeskflow.IntegrationChanged{Provider: c.Provider, Team: c.Account, Error: class}, now)
}

// ConnectionFailed records that active connection id stopped working for a
// reason only a person can fix (an Outlook login, TLS or folder refused):
// it moves to status (needs_revalidation or token_expired) with the
// failure's class and message, and the matching integration event is
// recorded. A connection that is not active is left as it is.
func (m *Manager) ConnectionFailed(ctx context.Context, workspaceID, id uuid.UUID, status, class, message string) error {
	return m.cfg.Store.Transact(ctx, func(tx Tx) error {
		c, _, err := tx.LockConnection(ctx, workspaceID, id)
		if err != nil || c.Status != helpdeskflow.ConnectionActive {
			return err
		}
		return stop(ctx, tx, c, status, class, message, m.now())
	})
}

// TokenRevoked records that the provider refused connection id's access
// token for good (a 401 to a token that does not expire, such as
// Shopify's and Stripe's): the connection becomes token_expired, as after
// invalid_grant, with message saying what happened. A connection that is
// not active any more is left as it is.
func (m *Manager) TokenRevoked(ctx context.Context, workspaceID, id uuid.UUID, message string) error {
	return m.cfg.Store.Transact(ctx, func(tx Tx) error {
		c, _, err := tx.LockConnection(ctx, workspaceID, id)
		if err != nil || c.Status != helpdeskflow.ConnectionActive {
			return err
		}
		return expire(ctx, tx, c, "unauthorized", message, m.now())
	})
}

func failureClass(err error) string {
	switch oauth.Classify(err) {
	case oauth.FailureInvalidGrant:
		return "invalid_grant"
	case oauth.FailureInvalidClient:
		return "invalid_client"
	case oauth.FailureTemporary:
		return "temporary"
	}
	return "error"
}

// recordFailure notes a failed connection step on the connection (status
// unchanged when status is ""); failures to record are ignored, the
// caller reports the original error.
func (m *Manager) recordFailure(ctx context.Context, workspaceID, id uuid.UUID, status, class, msg string) {
	_ = m.cfg.Store.Transact(ctx, func(tx Tx) error {
		c, _, err := tx.LockConnection(ctx, workspaceID, id)
		if err != nil {
			return err
		}
		if status == "" {
			status = c.Status
		}
		tx.SetConnectionStatus(ctx, id, status, class, msg, nil, m.now())
		return nil
	})
}

// Disconnect forgets connection id and its tokens, recording
// integration.disconnected. ENotFound for an unknown one.
func (m *Manager) Disconnect(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, id uuid.UUID) error {
	return m.cfg.Store.Transact(ctx, func(tx Tx) error {
		c, _, err := tx.LockConnection(ctx, workspaceID, id)
		if err != nil {
			return err
		}
		tx.DeleteConnection(ctx, id)
		return appendWorkspaceEvent(ctx, tx, workspaceID, md, helpdeskflow.EventIntegrationDisconnected,
			helpdeskflow.IntegrationChanged{Provider: c.Provider, Team: c.Account}, m.now())
	})
}

// Explain says what a connection's state means and what an admin can do,
// in words.
func Explain(c helpdeskflow.Connection) string {
	switch c.Status {
	case helpdeskflow.ConnectionPending:
		if c.LastError != "" {
			return "Connecting did not finish: " + c.LastError + ". Start connecting again."
		}
		return "Waiting for someone to approve access at the provider (the link from connect expires after 10 minutes)."
	case helpdeskflow.ConnectionTokenExpired:
		return "The provider no longer accepts this connection (access was revoked, the password changed, or the grant expired). Syncs are stopped; connect again to resume where they stopped."
	case helpdeskflow.ConnectionNeedsRevalidation:
		if c.Provider == "outlook" {
			return "Syncs are stopped: " + c.LastError + " Save the corrected settings to resume where the sync stopped."
		}
		return "The provider refused a token refresh (" + c.LastError + "). Check the app's client settings, then connect again."
	case helpdeskflow.ConnectionDisabled:
		return "Disabled."
	}
	if c.LastErrorClass == "temporary" && c.NextRetryAt != nil {
		return "Working; the last token refresh failed temporarily (" + c.LastError + ") and is retried after " + c.NextRetryAt.Format(time.RFC3339) + "."
	}
	if c.LastError != "" {
		next := ""
		if c.NextSyncAt != nil {
			next = " Next attempt after " + c.NextSyncAt.Format(time.RFC3339) + "."
		}
		return fmt.Sprintf("Connected, but the last %d sync run(s) failed: %s%s", max(c.SyncFailures, 1), c.LastError, next)
	}
	return "Working."
}

func appendWorkspaceEvent(ctx context.Context, tx Tx, workspaceID uuid.UUID, md helpdeskflow.Metadata, eventType string, data any, now time.Time) error {
	e, err := helpdeskflow.NewEventOf(eventType, data)
	if err != nil {
		return err
	}
	e.OccurredAt = now
	ref := helpdeskflow.StreamRef{ID: workspaceID, WorkspaceID: workspaceID, Type: helpdeskflow.StreamWorkspace}
	version, err := tx.LockStream(ctx, ref)
	if err != nil {
		return err
	}
	_, err = tx.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{e})
	return err
}

func systemMetadata() helpdeskflow.Metadata {
	return helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem, ID: "integrations"}, Channel: helpdeskflow.ChannelSystem}
}

// userMetadata is the callback's: a person approving access at the
// provider, through the browser rather than an API key.
func userMetadata() helpdeskflow.Metadata {
	return helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorIntegration, ID: "oauth-callback"}, Channel: helpdeskflow.ChannelIntegration}
}

// Explain is the package's Explain, for callers that know the Manager only
// through an interface.
func (m *Manager) Explain(c helpdeskflow.Connection) string { return Explain(c) }

// Providers lists the configured provider names.
func (m *Manager) Providers() []string {
	var out []string
	for name := range m.cfg.Providers {
		out = append(out, name)
	}
	return out
}

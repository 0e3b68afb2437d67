package outbound

import (
	"context"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// SlackVerifier asks Slack whether a bot token works (auth.test). Its
// error message says what Slack answered (such as invalid_auth).
type SlackVerifier interface {
	VerifySlackToken(ctx context.Context, token string) (teamID, team string, err error)
}

// WithSlack makes the Service check Slack tokens with v.
func WithSlack(v SlackVerifier) Option { return func(s *Service) { s.slack = v } }

// ConnectSlack is the body of PUT /v1/integrations/slack.
type ConnectSlack struct {
	BotToken string                     `json:"bot_token"`
	Channels helpdeskflow.SlackChannels `json:"channels"`
}

var slackChannel = regexp.MustCompile(`^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{4,20})$`)

// Validate checks the token's form and the channels, returning all
// problems at once as EValidation, and trims them in place.
func (c *ConnectSlack) Validate() error {
	var p commands.Problems
	c.BotToken = strings.TrimSpace(c.BotToken)
	switch {
	case c.BotToken == "":
		p.Add("bot_token", "required")
	case !strings.HasPrefix(c.BotToken, "xoxb-") || len(c.BotToken) > 255:
		p.Add("bot_token", "must be a Slack bot token (xoxb-…)")
	}
	checkSlackChannels(&p, &c.Channels)
	return p.Err()
}

// ValidateSlackChannels checks the channels of a Slack integration and
// trims them in place: EValidation naming each bad channel (channels.*),
// or channels when none is named.
func ValidateSlackChannels(channels *helpdeskflow.SlackChannels) error {
	var p commands.Problems
	checkSlackChannels(&p, channels)
	return p.Err()
}

func checkSlackChannels(p *commands.Problems, channels *helpdeskflow.SlackChannels) {
	any := false
	for _, ch := range []struct {
		field string
		value *string
	}{{"channels.new_ticket", &channels.NewTicket}, {"channels.escalation", &channels.Escalation},
		{"channels.sla_warning", &channels.SLAWarning}, {"channels.sla_breach", &channels.SLABreach}} {
		*ch.value = strings.TrimSpace(*ch.value)
		if *ch.value == "" {
			continue
		}
		any = true
		if !slackChannel.MatchString(*ch.value) {
			p.Add(ch.field, "must be a channel name such as #support (lowercase) or a channel id such as C0123ABCD")
		}
	}
	if !any {
		p.Add("channels", "name at least one channel: new_ticket, escalation, sla_warning or sla_breach")
	}
}

// ConnectSlack checks the bot token with Slack, then stores it sealed with
// the channels, active, recording integration.connected on the workspace
// stream (never the token). A token Slack refuses is EValidation naming
// bot_token and Slack's answer. A workspace has one Slack integration: one
// installed through OAuth (POST /v1/integrations/slack/connect) is not
// replaced by a pasted token, EConflict naming it (disconnect it first);
// a pasted one is replaced.
func (s *Service) ConnectSlack(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd ConnectSlack) (helpdeskflow.SlackIntegration, error) {
	if err := s.requireSealer(); err != nil {
		return helpdeskflow.SlackIntegration{}, err
	}
	if s.slack == nil {
		return helpdeskflow.SlackIntegration{}, helpdeskflow.Errorf(helpdeskflow.EUnavailable, "Slack is not configured on this server")
	}
	if err := cmd.Validate(); err != nil {
		return helpdeskflow.SlackIntegration{}, err
	}
	teamID, team, err := s.slack.VerifySlackToken(ctx, cmd.BotToken)
	if err != nil {
		var p commands.Problems
		p.Add("bot_token", "Slack refused it: %s", err.Error())
		return helpdeskflow.SlackIntegration{}, p.Err()
	}
	sealed, err := s.sealer.Seal([]byte(cmd.BotToken), helpdeskflow.SlackTokenAAD(workspaceID))
	if err != nil {
		return helpdeskflow.SlackIntegration{}, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "seal Slack token", Err: err}
	}
	now := s.now()
	in := helpdeskflow.SlackIntegration{WorkspaceID: workspaceID, Channels: cmd.Channels, Status: helpdeskflow.IntegrationActive,
		TeamID: teamID, Team: team, ConnectedAt: now, UpdatedAt: now}
	err = s.onWorkspace(ctx, workspaceID, md, helpdeskflow.EventIntegrationConnected, helpdeskflow.IntegrationChanged{Provider: "slack", Team: team},
		func(tx Tx) error {
			existing, _, err := tx.LockSlackIntegration(ctx, workspaceID)
			switch {
			case err == nil && existing.Source() == helpdeskflow.SlackSourceOAuth:
				return SlackInstalledConflict(existing)
			case err != nil && helpdeskflow.ErrorCode(err) != helpdeskflow.ENotFound:
				return err
			}
			return tx.PutSlackIntegration(ctx, in, sealed)
		})
	return in, err
}

// SlackInstalledConflict is the EConflict of a Slack integration that
// stands in the way of another: a workspace has one, installed through
// OAuth or with a pasted bot token, and only the same way replaces it.
func SlackInstalledConflict(existing helpdeskflow.SlackIntegration) error {
	if existing.Source() == helpdeskflow.SlackSourceOAuth {
		return helpdeskflow.Errorf(helpdeskflow.EConflict, "Slack is already installed through OAuth in this workspace (integration %s); "+
			"a workspace has one Slack integration: disconnect it first (DELETE /v1/integrations/slack)", existing.ConnectionID)
	}
	return helpdeskflow.Errorf(helpdeskflow.EConflict, "Slack is already connected with a pasted bot token in this workspace; "+
		"a workspace has one Slack integration: disconnect it first (DELETE /v1/integrations/slack)")
}

// DisconnectSlack forgets the workspace's Slack token and channels, and
// the OAuth connection the token came from if it was installed that way;
// ENotFound when Slack is not connected.
func (s *Service) DisconnectSlack(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata) error {
	return s.onWorkspace(ctx, workspaceID, md, helpdeskflow.EventIntegrationDisconnected, helpdeskflow.IntegrationChanged{Provider: "slack"},
		func(tx Tx) error {
			if _, _, err := tx.LockSlackIntegration(ctx, workspaceID); err != nil {
				return err
			}
			tx.DeleteSlackIntegration(ctx, workspaceID)
			return nil
		})
}

// RevalidateSlack checks the stored token with Slack again: accepted, the
// integration is active again (integration.revalidated) and notifications
// resume; refused, it stays needs_revalidation with Slack's answer as its
// last error. Notifications skipped meanwhile are not sent late; the
// notification log lists them.
func (s *Service) RevalidateSlack(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata) (helpdeskflow.SlackIntegration, error) {
	if err := s.requireSealer(); err != nil {
		return helpdeskflow.SlackIntegration{}, err
	}
	if s.slack == nil {
		return helpdeskflow.SlackIntegration{}, helpdeskflow.Errorf(helpdeskflow.EUnavailable, "Slack is not configured on this server")
	}
	in, sealed, err := s.store.SlackIntegration(ctx, workspaceID)
	if err != nil {
		return in, err
	}
	token, err := s.sealer.Open(sealed, helpdeskflow.SlackTokenAAD(workspaceID))
	if err != nil {
		return in, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "open the Slack token (was HDF_SECRET_KEYS changed?)", Err: err}
	}
	_, team, checkErr := s.slack.VerifySlackToken(ctx, string(token))
	if checkErr != nil {
		return in, s.SlackAuthFailed(ctx, workspaceID, checkErr.Error())
	}
	now := s.now()
	if in.Status == helpdeskflow.IntegrationActive {
		return in, nil
	}
	err = s.onWorkspace(ctx, workspaceID, md, helpdeskflow.EventIntegrationRevalidated, helpdeskflow.IntegrationChanged{Provider: "slack", Team: team},
		func(tx Tx) error {
			if _, _, err := tx.LockSlackIntegration(ctx, workspaceID); err != nil {
				return err
			}
			tx.SetSlackStatus(ctx, workspaceID, helpdeskflow.IntegrationActive, "", now)
			return nil
		})
	in.Status, in.LastError, in.UpdatedAt = helpdeskflow.IntegrationActive, "", now
	return in, err
}

// SlackAuthFailed marks the workspace's Slack integration
// needs_revalidation because Slack refused its token (reason: Slack's
// answer), recording integration.needs_revalidation once; notifications
// pause until RevalidateSlack succeeds. It returns nil when the
// integration is already marked or gone.
func (s *Service) SlackAuthFailed(ctx context.Context, workspaceID uuid.UUID, reason string) error {
	md := helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem, ID: "slack"}, Channel: helpdeskflow.ChannelSystem}
	err := s.onWorkspace(ctx, workspaceID, md, helpdeskflow.EventIntegrationNeedsRevalidation,
		helpdeskflow.IntegrationChanged{Provider: "slack", Error: reason}, func(tx Tx) error {
			in, _, err := tx.LockSlackIntegration(ctx, workspaceID)
			if err != nil {
				return err
			}
			if in.Status == helpdeskflow.IntegrationNeedsRevalidation {
				return errAlreadyDone
			}
			tx.SetSlackStatus(ctx, workspaceID, helpdeskflow.IntegrationNeedsRevalidation, reason, s.now())
			return nil
		})
	if err == errAlreadyDone || helpdeskflow.ErrorCode(err) == helpdeskflow.ENotFound {
		return nil
	}
	return err
}

var errAlreadyDone = &helpdeskflow.Error{Code: helpdeskflow.EConflict, Message: "nothing to change"}

// onWorkspace runs change and appends one event of eventType with data to
// the workspace's stream, in one transaction.
func (s *Service) onWorkspace(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, eventType string, data any, change func(tx Tx) error) error {
	e, err := helpdeskflow.NewEventOf(eventType, data)
	if err != nil {
		return err
	}
	e.OccurredAt = s.now()
	return s.store.Transact(ctx, func(tx Tx) error {
		ref := commands.WorkspaceRef(workspaceID)
		version, err := tx.LockStream(ctx, ref)
		if err != nil {
			return err
		}
		if err := change(tx); err != nil {
			return err
		}
		_, err = tx.Append(ctx, ref, version, md, []helpdeskflow.NewEvent{e})
		return err
	})
}

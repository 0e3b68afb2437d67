package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
	"github.com/helpdeskflow/helpdeskflow/store/connections"
)

// integrationsOf builds the integrations manager (OAuth connections and
// Outlook mailboxes) and the linked-profile linker, with their metrics.
// Their connections — OAuth token endpoints (Shopify's per shop), the
// Outlook IMAP and SMTP servers, Shopify and Stripe lookups — go through
// policy. The mail servers' certificates may also chain to the CAs of
// HDF_EXTRA_CA_FILE.
func integrationsOf(cfg config, policy egress.Policy, keyring *secretbox.Keyring, store *connections.Store, service *tickets.Service, logger *slog.Logger,
	reg prometheus.Registerer) (*integrations.Manager, *linkedprofiles.Linker, error) {
	providers, err := oauthProviders(cfg.PublicURL)
	if err != nil {
		return nil, nil, err
	}
	metrics, err := integrations.NewMetrics(reg, store.ConnectionCounts)
	if err != nil {
		return nil, nil, err
	}
	imapOptions := []imapmail.Option{imapmail.WithPolicy(policy), imapmail.WithLogger(logger)}
	mailTLS, err := cfg.mailTLS()
	if err != nil {
		return nil, nil, err
	}
	if mailTLS != nil {
		imapOptions = append(imapOptions, imapmail.WithTLSConfig(mailTLS))
	}
	manager, err := integrations.New(integrations.Config{Store: integrations.AdaptStore(store), Sealer: keyring,
		Providers: providers, StateKey: stateKey(cfg.SecretKeys), OnRefresh: metrics.Refreshed,
		HTTPClient:  outboundHTTP(policy, 8*time.Second),
		IMAPOptions: imapOptions})
	if err != nil {
		return nil, nil, err
	}
	var lookupOpts []profilelookup.Option
	if shopify := cfg.ShopifyAPIURL; shopify != "" {
		lookupOpts = append(lookupOpts, profilelookup.WithShopifyBaseURL(func(shop string) string { return strings.ReplaceAll(shopify, "{shop}", shop) }))
	}
	if cfg.StripeAPIURL != "" {
		lookupOpts = append(lookupOpts, profilelookup.WithStripeBaseURL(cfg.StripeAPIURL))
	}
	lookup := profilelookup.New(outboundHTTP(policy, profilelookup.DefaultTimeout), lookupOpts...)
	linker, err := linkedprofiles.New(linkedprofiles.Config{Connections: store, Tokens: manager, Lookup: lookup, Customers: service,
		Logger: logger, Registerer: reg})
	if err != nil {
		return nil, nil, err
	}
	return manager, linker, nil
}

// outboundHTTP is an HTTP client whose every connection goes through
// policy, with timeout.
func outboundHTTP(policy egress.Policy, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: policy.Transport()}
}

// mailWorkers returns the dispatcher role's mailbox sync and reply
// workers.
func mailWorkers(cfg config, store mailRooms, service *tickets.Service, manager *integrations.Manager, results mailsync.SyncRecorder,
	logger *slog.Logger, reg prometheus.Registerer) ([]func(context.Context) error, error) {
	intervals, err := cfg.syncIntervals()
	if err != nil {
		return nil, err
	}
	metrics, err := mailsync.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	sync := mailsync.NewWorker(mailsync.Config{Store: store, Importer: service, Tokens: manager, IMAP: manager,
		GmailBaseURL: cfg.GmailAPIURL, Interval: intervals, Results: results, Metrics: metrics, Logger: logger})
	replies := mailsync.NewReplyWorker(mailsync.ReplyConfig{Store: store, Tickets: service, Tokens: manager, IMAP: manager,
		GmailBaseURL: cfg.GmailAPIURL, MessageIDDomain: hostOf(cfg.PublicURL), Metrics: metrics, Logger: logger})
	return []func(context.Context) error{sync.Run, replies.Run}, nil
}

// hostOf is a URL's host name ("" when it has none).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

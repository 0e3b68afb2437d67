package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// config is every setting of the binary. Each flag has an HDF_* environment
// equivalent; a flag given on the command line wins over the environment.
type config struct {
	PostgresURL        string
	KafkaBrokers       string
	ClickHouseAddr     string
	ClickHouseDatabase string
	HTTPAddr           string
	DebugAddr          string
	MetricsAddr        string
	DataDir            string
	Roles              string
	LogLevel           string
	LogFormat          string
	TrustedProxies     string
	SecretKeys         string
	OutboundLoopback   string
	WebhookLoopback    string
	WebhookBackoff     string
	WebhookFactor      string
	SlackAPIURL        string
	PublicURL          string
	GmailAPIURL        string
	GmailInterval      string
	OutlookInterval    string
	ShopifyAPIURL      string
	StripeAPIURL       string
	RetainDeliveries   string
	RetainMail         string
	RetainRequestLog   string
	RetainWebhookFacts string
	RetainMailFacts    string
	RetainAuditLog     string
	RetentionInterval  string
	InstanceID         string
	ExtraCAFile        string
	KafkaPort          int
	PostgresMaxConns   int
	GroupCommitters    int
	ReadCacheMB        int
	// dev is set by the dev command (not a flag): dev's defaults apply.
	dev bool
}

// setting describes one flag and its environment variable. Keep the
// README's configuration table in step with this list.
type setting struct {
	flag, env, def, usage string
	target                *string
}

func (c *config) settings() []setting {
	return []setting{
		{"postgres-url", "HDF_POSTGRES_URL", "postgres://postgres@127.0.0.1:15432/helpdeskflow?sslmode=disable", "Postgres URL of the event store", &c.PostgresURL},
		{"kafka-brokers", "HDF_KAFKA_BROKERS", "", "comma-separated Kafka seed brokers (serve; dev runs its own broker)", &c.KafkaBrokers},
		{"clickhouse-addr", "HDF_CLICKHOUSE_ADDR", "127.0.0.1:19000", "ClickHouse native-protocol address", &c.ClickHouseAddr},
		{"clickhouse-database", "HDF_CLICKHOUSE_DATABASE", "helpdeskflow", "ClickHouse database of the read models", &c.ClickHouseDatabase},
		{"http-addr", "HDF_HTTP_ADDR", "127.0.0.1:8080", "address the HTTP API listens on (and /metrics, unless --metrics-addr is set)", &c.HTTPAddr},
		{"metrics-addr", "HDF_METRICS_ADDR", "", "if set, serve /metrics only on this address (one Prometheus reaches, not the public port)", &c.MetricsAddr},
		{"debug-addr", "HDF_DEBUG_ADDR", "", "if set, serve Go's pprof profiles on this address (keep it on loopback)", &c.DebugAddr},
		{"data-dir", "HDF_DATA_DIR", ".local/dev/app", "where dev keeps its embedded broker's data and the demo key (broker: its data)", &c.DataDir},
		{"roles", "HDF_ROLES", "api,relay,projector,dispatcher", "roles serve runs: api, relay, projector, dispatcher", &c.Roles},
		{"log-level", "HDF_LOG_LEVEL", "info", "debug, info, warn or error (debug adds a line per request, published, projected and dispatched event and webhook attempt)", &c.LogLevel},
		{"log-format", "HDF_LOG_FORMAT", "text", "text (key=value) or json (one object per line)", &c.LogFormat},
		{"trusted-proxies", "HDF_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For gives the client IP", &c.TrustedProxies},
		{"secret-keys", "HDF_SECRET_KEYS", "", "keyring sealing webhook secrets and tokens at rest: id:base64-32-byte-key[,…], the first seals (dev: generated into the data dir)", &c.SecretKeys},
		{"outbound-allow-loopback", "HDF_OUTBOUND_ALLOW_LOOPBACK", "", "true lets connections to hosts users name (webhooks, mail servers, Shopify, Stripe, OAuth token endpoints) reach loopback addresses (dev defaults to true); private networks stay refused", &c.OutboundLoopback},
		{"webhook-allow-loopback", "HDF_WEBHOOK_ALLOW_LOOPBACK", "", "deprecated name of --outbound-allow-loopback (HDF_OUTBOUND_ALLOW_LOOPBACK)", &c.WebhookLoopback},
		{"webhook-backoff", "HDF_WEBHOOK_BACKOFF", "10s", "wait after a webhook's first failed attempt", &c.WebhookBackoff},
		{"webhook-backoff-factor", "HDF_WEBHOOK_BACKOFF_FACTOR", "6", "each further retry waits this many times longer", &c.WebhookFactor},
		{"slack-api-url", "HDF_SLACK_API_URL", "https://slack.com/api/", "Slack Web API base URL", &c.SlackAPIURL},
		{"public-url", "HDF_PUBLIC_URL", "http://127.0.0.1:8080", "the API's public base URL (OAuth providers redirect to <public-url>/v1/integrations/<provider>/callback)", &c.PublicURL},
		{"gmail-api-url", "HDF_GMAIL_API_URL", "https://gmail.googleapis.com", "Gmail API base URL", &c.GmailAPIURL},
		{"gmail-sync-interval", "HDF_GMAIL_SYNC_INTERVAL", "20s", "how often each connected Gmail mailbox is synced", &c.GmailInterval},
		{"outlook-sync-interval", "HDF_OUTLOOK_SYNC_INTERVAL", "60s", "how often each connected Outlook (IMAP) mailbox is synced", &c.OutlookInterval},
		{"shopify-api-url", "HDF_SHOPIFY_API_URL", "https://{shop}.myshopify.com", "Shopify Admin API base URL; {shop} stands for the shop's subdomain", &c.ShopifyAPIURL},
		{"stripe-api-url", "HDF_STRIPE_API_URL", "https://api.stripe.com", "Stripe API base URL", &c.StripeAPIURL},
		{"retention-webhook-deliveries", "HDF_RETENTION_WEBHOOK_DELIVERIES", "30d", "keep finished webhook deliveries and their attempts this long after their last outcome (0: for ever)", &c.RetainDeliveries},
		{"retention-mail-records", "HDF_RETENTION_MAIL_RECORDS", "30d", "keep the records of mail that made no ticket this long, at least 8d (0: for ever)", &c.RetainMail},
		{"retention-request-log", "HDF_RETENTION_REQUEST_LOG", "90d", "keep the request log (ClickHouse api_requests) this long; whole months are dropped (0: for ever)", &c.RetainRequestLog},
		{"retention-webhook-facts", "HDF_RETENTION_WEBHOOK_FACTS", "400d", "keep the webhook attempts' analytics (ClickHouse webhook_attempts) this long; whole months are dropped (0: for ever)", &c.RetainWebhookFacts},
		{"retention-mail-facts", "HDF_RETENTION_MAIL_FACTS", "400d", "keep the mailbox sync runs' analytics (ClickHouse mail_syncs) this long; whole months are dropped (0: for ever)", &c.RetainMailFacts},
		{"retention-audit-log", "HDF_RETENTION_AUDIT_LOG", "0", "keep the audit history (ClickHouse audit_log) this long; whole months are dropped, and a rebuild writes them back (0: for ever)", &c.RetainAuditLog},
		{"retention-interval", "HDF_RETENTION_INTERVAL", "10m", "how often the dispatcher's retention job runs (±20% jitter)", &c.RetentionInterval},
		{"extra-ca-file", "HDF_EXTRA_CA_FILE", "", "PEM file of certificate authorities the mail servers' certificates may also chain to (Outlook's IMAP and SMTP over TLS), besides the system's: a private CA, or the dev profile's own (scripts/services.sh env dev prints it)", &c.ExtraCAFile},
		{"instance-id", "HDF_INSTANCE_ID", "", "static Kafka group membership: this process's id in each consumer group it joins (projector, dispatcher), kept across restarts (e.g. the pod name) so a restarted process takes its partitions back at once; empty: dynamic membership", &c.InstanceID},
	}
}

// parse reads flags from args with environment fallbacks. Only main's
// subcommands call it; nothing else reads the environment.
func parseConfig(name string, args []string) (config, []string, error) {
	var c config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	for _, s := range c.settings() {
		def := s.def
		if v, ok := os.LookupEnv(s.env); ok {
			def = v
		}
		fs.StringVar(s.target, s.flag, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	fs.IntVar(&c.KafkaPort, "kafka-port", 0, "dev and broker: TCP port of the Kafka broker (default: any free port)")
	ints := []struct {
		flag, env string
		def       int
		usage     string
		target    *int
	}{
		{"postgres-max-conns", "HDF_POSTGRES_MAX_CONNS", 32, "most Postgres connections per process; more than a few per core only adds contention", &c.PostgresMaxConns},
		{"read-cache-mb", "HDF_READ_CACHE_MB", 64, "MiB of folded tickets and customers (estimated) the consistent reads keep in memory per process, checked against the event store on every read; least recently used first out; 0 turns the cache off", &c.ReadCacheMB},
		{"group-committers", "HDF_GROUP_COMMITTERS", 2, "command transactions in flight at once per process, each carrying every command that arrived meanwhile (group commit); 0 runs each command on its own transaction", &c.GroupCommitters},
	}
	for _, s := range ints {
		def := s.def
		if v, ok := os.LookupEnv(s.env); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return config{}, nil, fmt.Errorf("%s must be a whole number, got %q", s.env, v)
			}
			def = n
		}
		fs.IntVar(s.target, s.flag, def, s.usage+" (env "+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return config{}, nil, err
	}
	return c, fs.Args(), c.validate()
}

func (c config) validate() error {
	var errs []error
	if c.PostgresURL == "" {
		errs = append(errs, errors.New("HDF_POSTGRES_URL (--postgres-url) is required"))
	}
	if c.GroupCommitters < 0 || c.GroupCommitters > c.PostgresMaxConns/2 {
		errs = append(errs, fmt.Errorf("HDF_GROUP_COMMITTERS (--group-committers) must be 0 to half of HDF_POSTGRES_MAX_CONNS (%d), got %d", c.PostgresMaxConns/2, c.GroupCommitters))
	}
	if c.ReadCacheMB < 0 {
		errs = append(errs, fmt.Errorf("HDF_READ_CACHE_MB (--read-cache-mb) must be 0 or more, got %d", c.ReadCacheMB))
	}
	if c.PostgresMaxConns < 4 {
		errs = append(errs, fmt.Errorf("HDF_POSTGRES_MAX_CONNS (--postgres-max-conns) must be at least 4, got %d", c.PostgresMaxConns))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("HDF_LOG_LEVEL (--log-level) must be debug, info, warn or error, got %q", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("HDF_LOG_FORMAT (--log-format) must be text or json, got %q", c.LogFormat))
	}
	if _, err := c.trustedProxies(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := c.webhookBackoff(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.syncIntervals(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.retention(); err != nil {
		errs = append(errs, err)
	}
	if c.ShopifyAPIURL != "" && !strings.Contains(c.ShopifyAPIURL, "{shop}") {
		errs = append(errs, fmt.Errorf("HDF_SHOPIFY_API_URL (--shopify-api-url) must contain {shop}, got %q", c.ShopifyAPIURL))
	}
	if _, _, err := c.loopbackSetting(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.mailTLS(); err != nil {
		errs = append(errs, err)
	}
	if err := kafka.CheckInstanceID(c.InstanceID); err != nil {
		errs = append(errs, fmt.Errorf("HDF_INSTANCE_ID (--instance-id): %w", err))
	}
	for _, role := range c.roles() {
		if !knownRoles[role] {
			errs = append(errs, fmt.Errorf("HDF_ROLES (--roles): unknown role %q (known: api, relay, projector, dispatcher)", role))
		}
	}
	return errors.Join(errs...)
}

var knownRoles = map[string]bool{"api": true, "relay": true, "projector": true, "dispatcher": true}

func (c config) roles() []string {
	var roles []string
	for _, r := range strings.Split(c.Roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	return roles
}

// trustedProxies parses TrustedProxies (CIDRs or single addresses).
func (c config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range strings.Split(c.TrustedProxies, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("HDF_TRUSTED_PROXIES (--trusted-proxies): %q is not a CIDR or an IP address", v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// webhookBackoff parses the retry schedule of webhook deliveries.
func (c config) webhookBackoff() (time.Duration, float64, error) {
	base, err := time.ParseDuration(c.WebhookBackoff)
	if err != nil || base <= 0 {
		return 0, 0, fmt.Errorf("HDF_WEBHOOK_BACKOFF (--webhook-backoff) must be a positive duration such as 10s, got %q", c.WebhookBackoff)
	}
	factor, err := strconv.ParseFloat(c.WebhookFactor, 64)
	if err != nil || factor < 1 || factor > 100 {
		return 0, 0, fmt.Errorf("HDF_WEBHOOK_BACKOFF_FACTOR (--webhook-backoff-factor) must be a number from 1 to 100, got %q", c.WebhookFactor)
	}
	return base, factor, nil
}

// syncIntervals parses how often mailboxes are synced, by provider (an
// unset one is left to the sync's default).
func (c config) syncIntervals() (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, s := range []struct{ provider, env, flag, value string }{
		{"google", "HDF_GMAIL_SYNC_INTERVAL", "gmail-sync-interval", c.GmailInterval},
		{"outlook", "HDF_OUTLOOK_SYNC_INTERVAL", "outlook-sync-interval", c.OutlookInterval},
	} {
		if s.value == "" {
			continue // the sync's default
		}
		d, err := time.ParseDuration(s.value)
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("%s (--%s) must be a duration of at least 1s such as 20s, got %q", s.env, s.flag, s.value)
		}
		out[s.provider] = d
	}
	return out, nil
}

// loopbackSetting reads HDF_OUTBOUND_ALLOW_LOOPBACK, or its old name
// HDF_WEBHOOK_ALLOW_LOOPBACK; set is false when neither is set. Both set
// to different values is an error.
func (c config) loopbackSetting() (allow, set bool, err error) {
	values := map[string]bool{}
	for _, s := range []struct{ env, flag, value string }{
		{"HDF_OUTBOUND_ALLOW_LOOPBACK", "outbound-allow-loopback", c.OutboundLoopback},
		{"HDF_WEBHOOK_ALLOW_LOOPBACK", "webhook-allow-loopback", c.WebhookLoopback},
	} {
		if s.value == "" {
			continue
		}
		v, err := strconv.ParseBool(s.value)
		if err != nil {
			return false, false, fmt.Errorf("%s (--%s) must be true or false, got %q", s.env, s.flag, s.value)
		}
		values[s.env] = v
		allow, set = v, true
	}
	if len(values) == 2 && values["HDF_OUTBOUND_ALLOW_LOOPBACK"] != values["HDF_WEBHOOK_ALLOW_LOOPBACK"] {
		return false, false, errors.New("HDF_OUTBOUND_ALLOW_LOOPBACK and its old name HDF_WEBHOOK_ALLOW_LOOPBACK disagree; set only HDF_OUTBOUND_ALLOW_LOOPBACK")
	}
	return allow, set, nil
}

// outboundPolicy is the one address policy of every connection to a host
// a user names: webhooks, Outlook's IMAP and SMTP servers, Shopify and
// Stripe lookups, OAuth token endpoints. Loopback is allowed when
// HDF_OUTBOUND_ALLOW_LOOPBACK says so, by default only in dev; private
// and other internal addresses never.
func (c config) outboundPolicy() egress.Policy {
	allow, set, _ := c.loopbackSetting() // validated with the config
	if !set {
		allow = c.dev
	}
	return egress.Policy{AllowLoopback: allow}
}

// mailTLS is the TLS configuration of the mail servers' connections: nil
// (the system's roots) without HDF_EXTRA_CA_FILE, else the system's roots
// and the file's certificates. A file that cannot be read or holds no PEM
// certificate is an error naming the setting.
func (c config) mailTLS() (*tls.Config, error) {
	if c.ExtraCAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.ExtraCAFile)
	if err != nil {
		return nil, fmt.Errorf("HDF_EXTRA_CA_FILE (--extra-ca-file): %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots here: the file's alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("HDF_EXTRA_CA_FILE (--extra-ca-file): %s holds no PEM certificate", c.ExtraCAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func (c config) brokers() []string {
	var brokers []string
	for _, b := range strings.Split(c.KafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return brokers
}

// retentionSettings are the parsed retention flags: how long each kind of
// record is kept (0: for ever) and how often the job runs.
type retentionSettings struct {
	Deliveries, Mail, RequestLog, Interval time.Duration
	// WebhookFacts, MailFacts and AuditLog are ClickHouse's
	// webhook_attempts, mail_syncs and audit_log.
	WebhookFacts, MailFacts, AuditLog time.Duration
}

// minMailRetention is the shortest retention of skipped mail records: a
// sync reads back at most its window (7 days) and IMAP a day more, and a
// record must outlive every read that could find its message again.
const minMailRetention = 8 * 24 * time.Hour

// retention parses the retention flags. A retention is a Go duration
// (720h) or a number of days (30d); 0 keeps the records for ever; a
// negative one is an error, as is a mail retention under 8 days (the
// sync would import skipped mail again).
func (c config) retention() (retentionSettings, error) {
	var r retentionSettings
	var errs []error
	for _, s := range []struct {
		env, flag, value string
		target           *time.Duration
		min              time.Duration
	}{
		{"HDF_RETENTION_WEBHOOK_DELIVERIES", "retention-webhook-deliveries", c.RetainDeliveries, &r.Deliveries, 0},
		{"HDF_RETENTION_MAIL_RECORDS", "retention-mail-records", c.RetainMail, &r.Mail, minMailRetention},
		{"HDF_RETENTION_REQUEST_LOG", "retention-request-log", c.RetainRequestLog, &r.RequestLog, 0},
		{"HDF_RETENTION_WEBHOOK_FACTS", "retention-webhook-facts", c.RetainWebhookFacts, &r.WebhookFacts, 0},
		{"HDF_RETENTION_MAIL_FACTS", "retention-mail-facts", c.RetainMailFacts, &r.MailFacts, 0},
		{"HDF_RETENTION_AUDIT_LOG", "retention-audit-log", c.RetainAuditLog, &r.AuditLog, 0},
	} {
		d, err := parseDays(s.value)
		switch {
		case err != nil || d < 0:
			errs = append(errs, fmt.Errorf("%s (--%s) must be 0 (keep for ever) or a positive duration such as 30d or 720h, got %q", s.env, s.flag, s.value))
		case d > 0 && d < s.min:
			errs = append(errs, fmt.Errorf("%s (--%s) must be 0 (keep for ever) or at least %s, got %q", s.env, s.flag, formatDays(s.min), s.value))
		default:
			*s.target = d
		}
	}
	d, err := parseDays(c.RetentionInterval)
	if err != nil || d < time.Second {
		errs = append(errs, fmt.Errorf("HDF_RETENTION_INTERVAL (--retention-interval) must be a duration of at least 1s such as 10m, got %q", c.RetentionInterval))
	}
	r.Interval = d
	return r, errors.Join(errs...)
}

// parseDays parses a Go duration or a whole number of days ("30d").
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// formatDays writes d as days when it is a whole number of them.
func formatDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

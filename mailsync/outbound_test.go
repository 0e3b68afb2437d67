package mailsync_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/egress/egresstest"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail/imapmailtest"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
)

// movedServer is a connection's stored settings with the IMAP server
// somewhere else since they were saved: a server that now answers
// differently, or a name that now resolves elsewhere.
type movedServer struct {
	*integrations.Manager
	host string
	port int
	opts []imapmail.Option
}

func (m movedServer) IMAPSettings(ctx context.Context, workspaceID, id uuid.UUID) (imapmail.Settings, error) {
	s, err := m.Manager.IMAPSettings(ctx, workspaceID, id)
	s.IMAPHost, s.IMAPPort, s.IMAPSecurity = m.host, m.port, imapmail.SecurityNone
	return s, err
}

func (m movedServer) IMAPOptions() []imapmail.Option { return m.opts }

func (o *outlook) syncThrough(settings mailsync.IMAPSettings) helpdeskflow.Connection {
	o.t.Helper()
	o.sync(mailsync.NewWorker(mailsync.Config{Store: o.store, Importer: o.svc.Tickets, Tokens: o.m, IMAP: settings, Now: o.clock.Now}))
	return o.imapConnection()
}

// TestOutlook_LastErrorHoldsNoServerText: what a mail server says never
// reaches the connection's last_error or its explanation.
func TestOutlook_LastErrorHoldsNoServerText(t *testing.T) {
	o := newOutlook(t)
	const secret = "dc1-mail.corp.internal Banner-5e6f"
	host, port := imapmailtest.LineServer(t, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] "+secret+" ready", imapmailtest.IMAPRefusing(secret))
	c := o.syncThrough(movedServer{Manager: o.m, host: host, port: port, opts: []imapmail.Option{imapmailtest.AllowLoopback}})
	if c.LastErrorClass != imapmail.ErrorAuth || !strings.Contains(c.LastError, "authentication failed") {
		t.Fatalf("after a refused login: %+v", c)
	}
	if text := c.LastError + integrations.Explain(c); strings.Contains(text, "Banner-5e6f") || strings.Contains(text, "corp.internal") {
		t.Fatalf("last_error repeats the server's words: %q", text)
	}
}

// TestOutlook_SyncRefusesAnInternalAddress: a name that resolves to an
// internal address after the settings were saved (DNS rebinding) is
// refused at the sync's connect; the connection needs revalidation.
func TestOutlook_SyncRefusesAnInternalAddress(t *testing.T) {
	o := newOutlook(t)
	resolver := egresstest.FakeDNS(t, map[string][]netip.Addr{"mail.acme.test": {netip.MustParseAddr("10.0.0.1")}})
	c := o.syncThrough(movedServer{Manager: o.m, host: "mail.acme.test", port: 143,
		opts: []imapmail.Option{imapmail.WithPolicy(egress.Policy{AllowLoopback: true, Resolver: resolver})}})
	if c.LastErrorClass != imapmail.ErrorBlocked || c.Status != helpdeskflow.ConnectionNeedsRevalidation ||
		!strings.Contains(c.LastError, "10.0.0.1 is a private address") {
		t.Fatalf("after a sync to a private address: %+v", c)
	}
}

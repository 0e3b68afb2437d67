package profilelookup_test

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/egress/egresstest"
	"github.com/helpdeskflow/helpdeskflow/clients/profilelookup"
	plt "github.com/helpdeskflow/helpdeskflow/clients/profilelookup/profilelookuptest"
)

// TestLookup_OutboundPolicy: a shop whose domain resolves to an internal
// address is refused at dial time, before any request, as a final
// blocked_address failure.
func TestLookup_OutboundPolicy(t *testing.T) {
	srv := plt.NewServer()
	t.Cleanup(srv.Close)
	srv.SetToken(plt.Shopify, shop, shopToken)
	srv.SetToken(plt.Shopify, "intranet", shopToken)
	u, _ := url.Parse(srv.URL())
	_, port, _ := net.SplitHostPort(u.Host)
	resolver := egresstest.FakeDNS(t, map[string][]netip.Addr{
		shop + ".shops.test":     {netip.MustParseAddr("127.0.0.1")}, // where the fake listens
		"intranet.shops.test":    {netip.MustParseAddr("10.0.0.1")},
		"metadata.shops.test":    {netip.MustParseAddr("169.254.169.254")},
		"intranet-v6.shops.test": {netip.MustParseAddr("fd00::1")},
	})
	base := profilelookup.WithShopifyBaseURL(func(s string) string { return "http://" + s + ".shops.test:" + port + "/shops/" + s })
	client := func(p egress.Policy) *profilelookup.Client {
		p.Resolver = resolver
		return profilelookup.New(&http.Client{Transport: p.Transport()}, base)
	}

	production := client(egress.Policy{})
	for _, name := range []string{shop, "intranet", "metadata", "intranet-v6"} {
		_, _, err := production.Lookup(t.Context(), profilelookup.Account{Provider: "shopify", Name: name, AccessToken: shopToken}, "ann@example.com")
		var le *profilelookup.LookupError
		if !errors.As(err, &le) || le.Class != profilelookup.ClassBlockedAddress || le.Temporary() || !errors.Is(err, egress.ErrBlockedAddress) {
			t.Errorf("shop %s: %v, want a final blocked_address", name, err)
		}
	}
	if n := srv.Calls(""); n != 0 {
		t.Fatalf("the fake Shopify got %d requests", n)
	}

	// Where loopback is allowed, the same shop is looked up.
	if _, _, err := client(egress.Policy{AllowLoopback: true}).Lookup(t.Context(), shopAcct, "ann@example.com"); err != nil {
		t.Fatalf("loopback allowed: %v", err)
	}
	if n := srv.Calls(""); n != 1 {
		t.Errorf("the fake Shopify got %d requests, want 1", n)
	}
}

package oauth_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/egress/egresstest"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
)

// TestRefresh_OutboundPolicy: through a client with the policy's
// transport, a token endpoint at an internal address is refused at dial
// time, before any request, and classified as a failure retrying will not
// fix.
func TestRefresh_OutboundPolicy(t *testing.T) {
	fake := oauthtest.NewServer()
	defer fake.Close()
	u, _ := url.Parse(fake.TokenURL())
	_, port, _ := net.SplitHostPort(u.Host)
	resolver := egresstest.FakeDNS(t, map[string][]netip.Addr{
		"intranet.shops.test": {netip.MustParseAddr("10.0.0.1")},
		"metadata.shops.test": {netip.MustParseAddr("169.254.169.254")},
	})
	client := func(p egress.Policy) *http.Client {
		p.Resolver = resolver
		return &http.Client{Transport: p.Transport()}
	}
	perShop := fake.Provider("shopify")
	perShop.TokenURL = "https://" + oauth.ShopPlaceholder + ".shops.test:" + port + "/token"

	loopback := fake.Provider("fake") // the fake listens on 127.0.0.1
	intranet, err := perShop.ForShop("intranet")
	if err != nil {
		t.Fatal(err)
	}
	metadata, err := perShop.ForShop("metadata")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []oauth.Provider{loopback, intranet, metadata} {
		_, err := oauth.Refresh(context.Background(), p, "refresh-token", client(egress.Policy{}))
		if !errors.Is(err, egress.ErrBlockedAddress) || oauth.Classify(err) != oauth.FailureOther {
			t.Errorf("Refresh at %s = %v (%s), want a blocked address, FailureOther", p.TokenURL, err, oauth.Classify(err))
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("the fake provider got %d token requests", n)
	}

	// Where loopback is allowed the fake answers (the token is unknown).
	_, err = oauth.Refresh(context.Background(), loopback, "refresh-token", client(egress.Policy{AllowLoopback: true}))
	if oauth.Classify(err) != oauth.FailureInvalidGrant || len(fake.Requests()) != 1 {
		t.Errorf("loopback allowed: %v, %d requests", err, len(fake.Requests()))
	}
}

package profilelookup

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
)

// maxStripeCandidates is how many same-email Stripe customers (most
// recent first) have their subscriptions compared.
const maxStripeCandidates = 3

// subscriptionRank orders Stripe subscription statuses, best first; an
// unknown status ranks after these, and "none" (no subscription) last.
var subscriptionRank = map[string]int{
	"active": 0, "trialing": 1, "past_due": 2, "unpaid": 3, "paused": 4,
	"canceled": 5, "incomplete": 6, "incomplete_expired": 7,
}

const (
	rankUnknown = 8
	rankNone    = 9
)

type stripeCustomer struct {
	ID         string  `json:"id"`
	Object     string  `json:"object"`
	Email      *string `json:"email"`
	Created    int64   `json:"created"`
	Currency   *string `json:"currency"`
	Delinquent *bool   `json:"delinquent"`
	Balance    int64   `json:"balance"`
	Livemode   bool    `json:"livemode"`
}

type stripeNamed struct {
	ID       string  `json:"id"`
	Nickname *string `json:"nickname"`
}

type stripeSubscription struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Created int64  `json:"created"`
	Items   struct {
		Data []struct {
			Price *stripeNamed `json:"price"`
			Plan  *stripeNamed `json:"plan"`
		} `json:"data"`
	} `json:"items"`
}

// escapeStripeQuery escapes a value for a single-quoted Stripe search
// term: Stripe's query language escapes quotes with a backslash.
func escapeStripeQuery(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

func (c *Client) stripeHeader(o *op) http.Header {
	h := http.Header{
		"Authorization": {"Bearer " + o.token},
		"Accept":        {"application/json"},
		"User-Agent":    {userAgent},
	}
	if c.stripeVersion != "" {
		h.Set("Stripe-Version", c.stripeVersion)
	}
	if strings.HasPrefix(o.account, "acct_") {
		// The token is the connected account's own, so this is redundant;
		// it makes a platform key work too and is harmless otherwise.
		h.Set("Stripe-Account", o.account)
	}
	return h
}

func (c *Client) lookupStripe(ctx context.Context, o *op, email string) (helpdeskflow.LinkedProfile, bool, error) {
	const step = "search customers"
	header := c.stripeHeader(o)
	q := url.Values{
		"query": {"email:'" + escapeStripeQuery(email) + "'"},
		"limit": {"100"},
	}
	var matches []stripeCustomer
	for page := 0; page < maxPages; page++ {
		body, _, lerr := c.get(ctx, o, step, c.stripeBase+"/v1/customers/search?"+q.Encode(), header, stripeError)
		if lerr != nil {
			return helpdeskflow.LinkedProfile{}, false, lerr
		}
		var r struct {
			Object   string            `json:"object"`
			Data     *[]stripeCustomer `json:"data"`
			HasMore  bool              `json:"has_more"`
			NextPage *string           `json:"next_page"`
		}
		if lerr := o.decode(step, body, &r); lerr != nil {
			return helpdeskflow.LinkedProfile{}, false, lerr
		}
		if r.Object != "search_result" || r.Data == nil {
			return helpdeskflow.LinkedProfile{}, false, o.fail(step, http.StatusOK, ClassBadResponse, "response is not a search_result", nil)
		}
		for _, cu := range *r.Data {
			if cu.ID != "" && cu.Email != nil && helpdeskflow.NormalizeEmail(*cu.Email) == email {
				matches = append(matches, cu)
			}
		}
		if !r.HasMore || r.NextPage == nil || *r.NextPage == "" {
			break
		}
		q.Set("page", *r.NextPage)
	}
	if len(matches) == 0 {
		return helpdeskflow.LinkedProfile{}, false, nil
	}
	slices.SortStableFunc(matches, func(a, b stripeCustomer) int {
		return cmp.Or(cmp.Compare(b.Created, a.Created), cmp.Compare(b.ID, a.ID))
	})
	matches = matches[:min(len(matches), maxStripeCandidates)]
	var (
		best     *stripeCustomer
		bestSub  *stripeSubscription
		bestRank = rankNone + 1
	)
	for i := range matches {
		sub, lerr := c.bestSubscription(ctx, o, header, matches[i].ID)
		if lerr != nil {
			return helpdeskflow.LinkedProfile{}, false, lerr
		}
		rank := rankNone
		if sub != nil {
			rank = statusRank(sub.Status)
		}
		if rank < bestRank {
			best, bestSub, bestRank = &matches[i], sub, rank
		}
		if rank == 0 {
			break
		}
	}
	return stripeProfile(best, bestSub), true, nil
}

func statusRank(s string) int {
	if r, ok := subscriptionRank[s]; ok {
		return r
	}
	return rankUnknown
}

// bestSubscription lists the customer's 10 most recent subscriptions (all
// statuses) and returns the best ranked, the most recent among equals; nil
// when there is none.
func (c *Client) bestSubscription(ctx context.Context, o *op, header http.Header, customerID string) (*stripeSubscription, *LookupError) {
	const step = "list subscriptions"
	q := url.Values{"customer": {customerID}, "status": {"all"}, "limit": {"10"}}
	body, _, lerr := c.get(ctx, o, step, c.stripeBase+"/v1/subscriptions?"+q.Encode(), header, stripeError)
	if lerr != nil {
		return nil, lerr
	}
	var r struct {
		Object string                `json:"object"`
		Data   *[]stripeSubscription `json:"data"`
	}
	if lerr := o.decode(step, body, &r); lerr != nil {
		return nil, lerr
	}
	if r.Object != "list" || r.Data == nil {
		return nil, o.fail(step, http.StatusOK, ClassBadResponse, "response is not a list", nil)
	}
	var best *stripeSubscription
	for i := range *r.Data {
		s := &(*r.Data)[i]
		if best == nil {
			best = s
			continue
		}
		if d := statusRank(s.Status) - statusRank(best.Status); d < 0 || d == 0 && s.Created > best.Created {
			best = s
		}
	}
	return best, nil
}

func stripeProfile(cu *stripeCustomer, sub *stripeSubscription) helpdeskflow.LinkedProfile {
	data := map[string]any{
		"subscription_status": "none",
		"balance":             float64(cu.Balance),
		"created":             time.Unix(cu.Created, 0).UTC().Format(time.RFC3339),
		"livemode":            cu.Livemode,
	}
	if sub != nil {
		data["subscription_status"] = sub.Status
		if plan := planName(sub); plan != "" {
			data["plan"] = plan
		}
	}
	if cu.Currency != nil && *cu.Currency != "" {
		data["currency"] = *cu.Currency
	}
	if cu.Delinquent != nil {
		data["delinquent"] = *cu.Delinquent
	}
	dashboard := "https://dashboard.stripe.com/"
	if !cu.Livemode {
		dashboard += "test/"
	}
	return helpdeskflow.LinkedProfile{
		Provider:   ProviderStripe,
		ExternalID: cu.ID,
		URL:        dashboard + "customers/" + url.PathEscape(cu.ID),
		Data:       data,
	}
}

// planName is the nickname, else the id, of the first item's price (or of
// its legacy plan).
func planName(s *stripeSubscription) string {
	if len(s.Items.Data) == 0 {
		return ""
	}
	it := s.Items.Data[0]
	for _, n := range []*stripeNamed{it.Price, it.Plan} {
		if n == nil {
			continue
		}
		if n.Nickname != nil && *n.Nickname != "" {
			return *n.Nickname
		}
		if n.ID != "" {
			return n.ID
		}
	}
	return ""
}

// stripeError classifies a non-2xx Stripe answer, whose body is
// {"error":{"type":…,"code":…,"message":…}}.
func stripeError(status int, body []byte) errorInfo {
	msg := http.StatusText(status)
	var r struct {
		Error *struct {
			Type    string `json:"type"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &r) == nil && r.Error != nil {
		parts := []string{}
		for _, p := range []string{r.Error.Type, r.Error.Code} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			msg = strings.Join(parts, "/")
		}
		if r.Error.Message != "" {
			msg += ": " + r.Error.Message
		}
	}
	switch {
	case status == http.StatusUnauthorized:
		return errorInfo{ClassUnauthorized, "access token refused (revoked?): " + msg}
	case status == http.StatusForbidden:
		// permission_error, or account_invalid: the token has no access
		// to the account any more.
		return errorInfo{ClassUnauthorized, "no access to the account: " + msg}
	case status == http.StatusTooManyRequests:
		return errorInfo{ClassRateLimited, msg}
	case status >= 500:
		return errorInfo{ClassTemporary, msg}
	}
	return errorInfo{ClassBadResponse, msg}
}

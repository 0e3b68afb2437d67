package profilelookup

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
)

// shopifyFields are the customer fields asked for (Shopify answers only
// these when fields= is given).
const shopifyFields = "id,email,orders_count,total_spent,currency,state,tags,created_at,last_order_name,verified_email"

// maxPages bounds the search result pages read per lookup.
const maxPages = 4

type shopifyCustomer struct {
	ID            int64   `json:"id"`
	Email         *string `json:"email"`
	OrdersCount   *int64  `json:"orders_count"`
	TotalSpent    *string `json:"total_spent"`
	Currency      *string `json:"currency"`
	State         *string `json:"state"`
	Tags          *string `json:"tags"`
	CreatedAt     *string `json:"created_at"`
	LastOrderName *string `json:"last_order_name"`
	VerifiedEmail *bool   `json:"verified_email"`
}

// escapeShopifyQuery escapes a value for a double-quoted Shopify search term.
func escapeShopifyQuery(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

func (c *Client) lookupShopify(ctx context.Context, o *op, email string) (helpdeskflow.LinkedProfile, bool, error) {
	const step = "search customers"
	base := strings.TrimRight(c.shopifyBase(o.account), "/")
	baseURL, err := url.Parse(base)
	if err != nil || baseURL.Host == "" {
		return helpdeskflow.LinkedProfile{}, false, o.fail(step, 0, ClassBadResponse, "bad Shopify base URL", nil)
	}
	header := http.Header{
		"X-Shopify-Access-Token": {o.token},
		"Accept":                 {"application/json"},
		"User-Agent":             {userAgent},
	}
	q := url.Values{
		"query":  {`email:"` + escapeShopifyQuery(email) + `"`},
		"fields": {shopifyFields},
		"limit":  {"250"},
	}
	next := base + "/admin/api/" + url.PathEscape(c.shopifyVersion) + "/customers/search.json?" + q.Encode()
	var best *shopifyCustomer
	for page := 0; next != "" && page < maxPages; page++ {
		body, hdr, lerr := c.get(ctx, o, step, next, header, shopifyError)
		if lerr != nil {
			return helpdeskflow.LinkedProfile{}, false, lerr
		}
		var r struct {
			Customers *[]shopifyCustomer `json:"customers"`
		}
		if lerr := o.decode(step, body, &r); lerr != nil {
			return helpdeskflow.LinkedProfile{}, false, lerr
		}
		if r.Customers == nil {
			return helpdeskflow.LinkedProfile{}, false, o.fail(step, http.StatusOK, ClassBadResponse, `response has no "customers"`, nil)
		}
		for i := range *r.Customers {
			cu := &(*r.Customers)[i]
			if cu.ID <= 0 || cu.Email == nil || helpdeskflow.NormalizeEmail(*cu.Email) != email {
				continue
			}
			if best == nil || shopifyBetter(cu, best) {
				best = cu
			}
		}
		next = ""
		if link := nextLink(hdr.Get("Link")); link != "" {
			u, err := baseURL.Parse(link)
			if err != nil || u.Scheme != baseURL.Scheme || u.Host != baseURL.Host {
				return helpdeskflow.LinkedProfile{}, false, o.fail(step, http.StatusOK, ClassBadResponse, "next page link points elsewhere (not followed)", nil)
			}
			next = u.String()
		}
	}
	if best == nil {
		return helpdeskflow.LinkedProfile{}, false, nil
	}
	return shopifyProfile(o.account, best), true, nil
}

// shopifyBetter: more orders, then created later, then the higher id.
func shopifyBetter(a, b *shopifyCustomer) bool {
	ao, bo := deref(a.OrdersCount), deref(b.OrdersCount)
	if ao != bo {
		return ao > bo
	}
	at, bt := parseTime(deref(a.CreatedAt)), parseTime(deref(b.CreatedAt))
	if !at.Equal(bt) {
		return at.After(bt)
	}
	return a.ID > b.ID
}

func shopifyProfile(shop string, cu *shopifyCustomer) helpdeskflow.LinkedProfile {
	id := strconv.FormatInt(cu.ID, 10)
	data := map[string]any{
		"orders_count": float64(deref(cu.OrdersCount)),
		"tags":         splitTags(deref(cu.Tags)),
	}
	if cu.TotalSpent != nil {
		if f, err := strconv.ParseFloat(strings.TrimSpace(*cu.TotalSpent), 64); err == nil && f == f {
			data["total_spent"] = f
		}
	}
	if cu.Currency != nil && *cu.Currency != "" {
		data["currency"] = *cu.Currency
	}
	if cu.State != nil && *cu.State != "" {
		data["state"] = *cu.State
	}
	if cu.CreatedAt != nil && *cu.CreatedAt != "" {
		data["created_at"] = rfc3339(*cu.CreatedAt)
	}
	if cu.LastOrderName != nil && *cu.LastOrderName != "" {
		data["last_order_name"] = *cu.LastOrderName
	}
	if cu.VerifiedEmail != nil {
		data["verified_email"] = *cu.VerifiedEmail
	}
	return helpdeskflow.LinkedProfile{
		Provider:   ProviderShopify,
		ExternalID: id,
		URL:        "https://admin.shopify.com/store/" + url.PathEscape(shop) + "/customers/" + id,
		Data:       data,
	}
}

// splitTags splits Shopify's comma-separated tags, trimming each and
// dropping empty ones; never nil (JSON []).
func splitTags(s string) []any {
	out := []any{}
	for t := range strings.SplitSeq(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// nextLink returns the URL of the rel="next" entry of a Link header
// (RFC 8288), "" when there is none. URLs may contain commas, so entries
// are found by their <…> delimiters.
func nextLink(h string) string {
	for h != "" {
		start := strings.IndexByte(h, '<')
		if start < 0 {
			return ""
		}
		end := strings.IndexByte(h[start:], '>')
		if end < 0 {
			return ""
		}
		target := h[start+1 : start+end]
		h = h[start+end+1:]
		params := h
		if i := strings.IndexByte(h, '<'); i >= 0 {
			params = h[:i]
		}
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "rel") {
				for rel := range strings.FieldsSeq(strings.Trim(strings.TrimSpace(v), `",`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// shopifyError classifies a non-2xx Shopify answer, whose body is
// {"errors": "…"} or {"errors": {"field": ["…"]}} (or HTML).
func shopifyError(status int, body []byte) errorInfo {
	msg := http.StatusText(status)
	var r struct {
		Errors json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &r) == nil && len(r.Errors) > 0 {
		var s string
		if json.Unmarshal(r.Errors, &s) == nil {
			msg = s
		} else {
			msg = string(r.Errors)
		}
	}
	lower := strings.ToLower(msg)
	switch {
	case status == http.StatusUnauthorized:
		return errorInfo{ClassUnauthorized, "access token refused: " + msg}
	case status == http.StatusForbidden && strings.Contains(lower, "scope"):
		// "This action requires merchant approval for read_customers
		// scope.": reconnecting grants the scope.
		return errorInfo{ClassUnauthorized, "missing scope: " + msg}
	case status == http.StatusPaymentRequired || status == http.StatusForbidden ||
		status == http.StatusNotFound || status == http.StatusLocked:
		return errorInfo{ClassNotAvailable, "shop unavailable: " + msg}
	case status == http.StatusTooManyRequests:
		return errorInfo{ClassRateLimited, msg}
	case status >= 500:
		return errorInfo{ClassTemporary, msg}
	}
	return errorInfo{ClassBadResponse, msg}
}

const userAgent = "helpdeskflow-profilelookup/1"

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

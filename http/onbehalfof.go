package http

import (
	"context"
	"fmt"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/helpdeskflow/helpdeskflow"
)

// onBehalfOfHeader names the agent an admin key acts for: the events its
// request appends record channel "agent" with that agent as actor (type
// "agent", id the header's value), in the audit and in ClickHouse's
// audit_log. HelpDeskFlow keeps no agent directory: the value is the
// integrator's own agent identifier.
const onBehalfOfHeader = "X-HDF-On-Behalf-Of"

// MaxOnBehalfOfLength is the longest X-HDF-On-Behalf-Of value, in
// characters.
const MaxOnBehalfOfLength = 255

// onBehalfOfKey holds the request's agent in its context.
type onBehalfOfKey struct{}

// onBehalfOf returns the request's X-HDF-On-Behalf-Of ("" without one). It
// returns EValidation naming the header when the value is empty, sent
// twice, longer than MaxOnBehalfOfLength characters, not UTF-8 or holds a
// character that is not printable (a control character, for example), and
// EForbidden naming the header when the key is not an admin key.
func onBehalfOf(r *http.Request, access helpdeskflow.Access) (string, error) {
	values := r.Header.Values(onBehalfOfHeader)
	if len(values) == 0 {
		return "", nil
	}
	if access.Role != helpdeskflow.RoleAdmin {
		return "", &helpdeskflow.Error{Code: helpdeskflow.EForbidden,
			Message: fmt.Sprintf("%s needs an admin API key; this key's role is %s", onBehalfOfHeader, access.Role),
			Details: []helpdeskflow.FieldProblem{{Field: onBehalfOfHeader, Problem: "needs an admin API key"}}}
	}
	problem := ""
	switch v := values[0]; {
	case len(values) > 1:
		problem = "must be sent once"
	case v == "":
		problem = "must not be empty"
	case !utf8.ValidString(v):
		problem = "must be UTF-8"
	case utf8.RuneCountInString(v) > MaxOnBehalfOfLength:
		problem = fmt.Sprintf("must be at most %d characters, got %d", MaxOnBehalfOfLength, utf8.RuneCountInString(v))
	default:
		for _, c := range v {
			if !unicode.IsPrint(c) {
				problem = fmt.Sprintf("must hold printable characters only, got %U", c)
				break
			}
		}
	}
	if problem != "" {
		return "", &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: onBehalfOfHeader + " " + problem,
			Details: []helpdeskflow.FieldProblem{{Field: onBehalfOfHeader, Problem: problem}}}
	}
	return values[0], nil
}

func agentOf(ctx context.Context) string {
	agent, _ := ctx.Value(onBehalfOfKey{}).(string)
	return agent
}

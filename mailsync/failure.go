package mailsync

import (
	"context"
	"errors"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail"
)

// Classes of failed sync runs, in the connection's last_error_class and the
// errors metric.
const (
	ClassRateLimited     = "rate_limited"
	ClassTokenExpired    = "token_expired"
	ClassTokenRefresh    = "token_refresh_failed"
	ClassUnauthorized    = "unauthorized"
	ClassUnavailable     = "provider_unavailable"
	ClassProvider        = "provider_error"
	ClassImport          = "import_failed"
	ClassSettings        = "settings_unreadable"
	ClassConnectionError = "connection_error"
	// ClassTimeout: the run reached its deadline without importing
	// anything (the same class imapmail gives a server that answers too
	// slowly).
	ClassTimeout = "timeout"
)

// failure is a failed run as the connection records it: a class, a
// message an admin can act on, the earliest retry the provider asked for,
// and a status to move the connection to ("" keeps it).
type failure struct {
	class, message, status string
	retryAfter             time.Duration
}

// classify names why a run failed. A Gmail 401 triggers a token refresh
// here: when the grant is gone, that marks the connection token_expired
// (and stops its syncs); otherwise the next run has a fresh token.
func (r *run) classify(ctx context.Context, err error) failure {
	if f, ok := imapFailure(err); ok {
		return f
	}
	var apiErr *gmail.APIError
	switch code := helpdeskflow.ErrorCode(err); {
	case code == helpdeskflow.EConflict:
		return failure{class: ClassTokenExpired, message: "Syncing stopped: " + helpdeskflow.ErrorMessage(err)}
	case code == helpdeskflow.EUnavailable:
		return failure{class: ClassTokenRefresh, message: "Refreshing the access token failed for now; the sync retries: " + helpdeskflow.ErrorMessage(err)}
	}
	if limited, after := gmail.IsRateLimited(err); limited {
		return failure{class: ClassRateLimited, retryAfter: after,
			message: "Google's rate limit was reached; the sync waits as Google asked and resumes where it stopped."}
	}
	if gmail.IsUnauthorized(err) {
		if _, rerr := r.w.cfg.Tokens.RefreshToken(ctx, r.conn.WorkspaceID, r.conn.ID); helpdeskflow.ErrorCode(rerr) == helpdeskflow.EConflict {
			return failure{class: ClassTokenExpired, message: "Google refused the connection's token and its grant: " + helpdeskflow.ErrorMessage(rerr)}
		}
		return failure{class: ClassUnauthorized, message: "Google refused the access token (" + err.Error() + "); it was refreshed and the sync retries."}
	}
	if gmail.IsTemporary(err) {
		return failure{class: ClassUnavailable, message: "Gmail is unavailable for now (" + err.Error() + "); the sync retries with backoff."}
	}
	if errors.As(err, &apiErr) {
		return failure{class: ClassProvider, message: "Gmail answered an error the sync cannot handle: " + err.Error()}
	}
	return failure{class: ClassImport, message: "Importing mail failed (" + err.Error() + "); the sync retries with backoff and resumes where it stopped."}
}

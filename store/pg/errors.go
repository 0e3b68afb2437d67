package pg

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/helpdeskflow/helpdeskflow"
)

// Internal wraps a driver error as EInternal, or as EUnavailable when the
// database could not be reached at all, so callers never see pgx errors. An
// error that is already an *helpdeskflow.Error (such as the version
// conflict of a deferred append) keeps its code.
func Internal(what string, err error) error {
	var appErr *helpdeskflow.Error
	if errors.As(err, &appErr) {
		return err
	}
	if isConnectionError(err) {
		return Unavailable(what, err)
	}
	return &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: what, Err: err}
}

// Unavailable wraps err as EUnavailable: the database could not be reached
// while doing what.
func Unavailable(what string, err error) error {
	return &helpdeskflow.Error{Code: helpdeskflow.EUnavailable, Message: "database unavailable: " + what, Err: err}
}

func isConnectionError(err error) bool {
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) || pgconn.SafeToRetry(err)
}

// IsUniqueViolation reports whether err is a Postgres unique_violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isLockTimeout reports whether err is Postgres's lock_not_available
// (lock_timeout ran out).
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

package client

import (
	"context"
	"time"
)

// SetSleep makes c wait through sleep (tests record the waits instead of
// waiting).
func SetSleep(c *Client, sleep func(ctx context.Context, d time.Duration) error) { c.sleep = sleep }

// Route is a route the client uses, for the OpenAPI check.
type Route struct {
	Method, Path string
	Query        []string
	Body, Answer any
}

// Routes lists every route the client uses.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = Route{Method: r.method, Path: r.path, Query: r.query, Body: r.body, Answer: r.answer}
	}
	return out
}

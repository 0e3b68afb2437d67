// Package healthcheck is the one request of `helpdeskflow healthcheck`, the
// image's HEALTHCHECK: GET a process's own /readyz and say whether it
// answered 2xx.
package healthcheck

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Get requests url with GET, without any proxy and with timeout for the
// whole request, and returns the answer's status ("200 OK") when it is
// 2xx. Otherwise the error names url and the status or the transport's
// failure, never the body. timeout must be positive.
func Get(ctx context.Context, url string, timeout time.Duration) (string, error) {
	if timeout <= 0 {
		return "", fmt.Errorf("healthcheck: the timeout must be positive, got %s", timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", fmt.Errorf("healthcheck: URL %q: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("healthcheck: GET %s answered %s", url, resp.Status)
	}
	return resp.Status, nil
}

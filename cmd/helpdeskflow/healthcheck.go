package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/healthcheck"
)

// runHealthcheck is `helpdeskflow healthcheck [--url URL] [--timeout D]`,
// the image's HEALTHCHECK (its distroless base has no shell and no curl):
// it GETs url, by default /readyz on this container's --http-addr
// (HDF_HTTP_ADDR; an empty or unspecified host is 127.0.0.1), without any
// proxy, and returns nil on a 2xx answer within the timeout (default 5 s).
// Otherwise the error names the URL and the status, never the body.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "URL to GET (default: http://<--http-addr, HDF_HTTP_ADDR>/readyz)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long the whole request may take")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck takes no arguments, got %q", fs.Args())
	}
	if *url == "" {
		u, err := readyzURL()
		if err != nil {
			return err
		}
		*url = u
	}
	status, err := healthcheck.Get(ctx, *url, *timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", *url, status)
	return nil
}

// readyzURL is /readyz on the HTTP address serve listens on: the http-addr
// setting's environment variable or its default, with an empty or
// unspecified (0.0.0.0, ::) host read as loopback.
func readyzURL() (string, error) {
	var addr, env string
	for _, s := range (&config{}).settings() {
		if s.flag == "http-addr" {
			addr, env = s.def, s.env
		}
	}
	if v, ok := os.LookupEnv(env); ok {
		addr = v
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("healthcheck: %s %q is not host:port: %w", env, addr, err)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/webhook"
)

const webhookVerifyUsage = `usage: helpdeskflow webhook verify --secret S --header 'X-HDF-Signature value' --body-file PATH [--tolerance 5m] [--now UNIX]

Checks a webhook delivery's signature the way a receiver should, and says in
words why it does not verify: a malformed header, a stale timestamp, a body
that changed on the way (a trailing newline, CRLF line endings, a byte order
mark, re-encoded JSON) or the wrong secret. Exits 1 when it does not verify.

`

// runWebhookVerify runs `helpdeskflow webhook verify`; args are the
// arguments after "webhook" ("verify" and its flags). It prints the
// diagnosis to stdout and returns an error when the signature does not
// verify or the flags are wrong.
func runWebhookVerify(args []string, stdout, stderr io.Writer) error {
	return webhookVerify(args, os.Stdin, os.Getenv, stdout, stderr)
}

func webhookVerify(args []string, stdin io.Reader, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "verify":
		args = args[1:]
	case len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "-help" && args[0] != "--help":
		// The flags without the subcommand name: still verify.
	default:
		fmt.Fprint(stderr, webhookVerifyUsage)
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return errors.New("usage: helpdeskflow webhook verify --secret S --header VALUE --body-file PATH")
		}
		return fmt.Errorf("unknown webhook command %q; the one command is verify", args[0])
	}

	fs := flag.NewFlagSet("webhook verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, webhookVerifyUsage)
		fs.PrintDefaults()
	}
	secret := fs.String("secret", "", "the webhook's signing secret, whsec_… (default $HDF_WEBHOOK_SECRET)")
	header := fs.String("header", "", `the X-HDF-Signature header's value, t=…,v1=… (a leading "X-HDF-Signature:" is allowed)`)
	bodyFile := fs.String("body-file", "", "file holding the raw request body exactly as received; - for standard input")
	tolerance := fs.Duration("tolerance", webhook.DefaultTolerance, "how far the signed time may be from now")
	nowUnix := fs.Int64("now", 0, "check as of this Unix time (seconds) instead of the clock")
	if err := fs.Parse(args); err != nil {
		return err
	}

	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if *secret == "" {
		*secret = getenv("HDF_WEBHOOK_SECRET")
	}
	if *secret == "" {
		problems = append(problems, "--secret is required (or HDF_WEBHOOK_SECRET)")
	}
	value := strings.TrimSpace(*header)
	if len(value) >= len(webhook.HeaderSignature)+1 && strings.EqualFold(value[:len(webhook.HeaderSignature)+1], webhook.HeaderSignature+":") {
		value = strings.TrimSpace(value[len(webhook.HeaderSignature)+1:])
	}
	if value == "" {
		problems = append(problems, "--header is required: the X-HDF-Signature value, t=…,v1=…")
	}
	if *bodyFile == "" {
		problems = append(problems, "--body-file is required (- for standard input)")
	}
	if *tolerance <= 0 {
		problems = append(problems, "--tolerance must be positive, such as 5m")
	}
	if *nowUnix < 0 {
		problems = append(problems, "--now must be a Unix time in seconds")
	}
	if len(problems) > 0 {
		return errors.New("webhook verify: " + strings.Join(problems, "; "))
	}

	var body []byte
	var err error
	if *bodyFile == "-" {
		body, err = io.ReadAll(stdin)
	} else {
		body, err = os.ReadFile(*bodyFile)
	}
	if err != nil {
		return fmt.Errorf("webhook verify: read the body: %w", err)
	}
	now := time.Now()
	if *nowUnix > 0 {
		now = time.Unix(*nowUnix, 0)
	}

	d := webhook.Diagnose(value, body, *secret, *tolerance, now)
	fmt.Fprintln(stdout, d.String())
	if !d.OK() {
		return fmt.Errorf("webhook verify: the signature does not verify (%s)", d.Finding)
	}
	return nil
}

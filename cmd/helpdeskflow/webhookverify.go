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
       helpdeskflow webhook verify --secret S --header 'webhook-id: …' --header 'webhook-timestamp: …' --header 'webhook-signature: v1,…' --body-file PATH

Checks a webhook delivery's signature the way a receiver should, and says in
words why it does not verify: a malformed header, a stale timestamp, a body
that changed on the way (a trailing newline, CRLF line endings, a byte order
mark, re-encoded JSON) or the wrong secret. --header may be given several
times, each "Name: value": X-HDF-Signature (a value without a name is one),
and the Standard Webhooks headers webhook-id, webhook-timestamp and
webhook-signature; each signature given is checked. Exits 1 when one does
not verify.

`

// headerFlags collects repeated --header flags, each "Name: value" of a
// header the command knows, or a bare X-HDF-Signature value.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

// Set implements flag.Value.
func (h headerFlags) Set(v string) error {
	v = strings.TrimSpace(v)
	for _, name := range []string{webhook.HeaderSignature, webhook.HeaderWebhookID, webhook.HeaderWebhookTimestamp, webhook.HeaderWebhookSignature} {
		if len(v) > len(name) && strings.EqualFold(v[:len(name)+1], name+":") {
			h[name] = strings.TrimSpace(v[len(name)+1:])
			return nil
		}
	}
	if name, _, ok := strings.Cut(v, ":"); ok && !strings.ContainsAny(name, "=, ") {
		return fmt.Errorf("unknown header %q: give X-HDF-Signature, webhook-id, webhook-timestamp or webhook-signature", name)
	}
	h[webhook.HeaderSignature] = v
	return nil
}

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
	headers := headerFlags{}
	fs.Var(headers, "header", `a header as received, "Name: value" (repeatable): X-HDF-Signature (t=…,v1=…; the name may be left out), webhook-id, webhook-timestamp, webhook-signature`)
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
	value := headers[webhook.HeaderSignature]
	standard := headers[webhook.HeaderWebhookID] != "" || headers[webhook.HeaderWebhookTimestamp] != "" || headers[webhook.HeaderWebhookSignature] != ""
	if value == "" && !standard {
		problems = append(problems, "--header is required: the X-HDF-Signature value, t=…,v1=…, or the webhook-id, webhook-timestamp and webhook-signature headers")
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

	type check struct {
		name string
		d    webhook.Diagnosis
	}
	var checks []check
	if value != "" {
		checks = append(checks, check{webhook.HeaderSignature, webhook.Diagnose(value, body, *secret, *tolerance, now)})
	}
	if standard {
		checks = append(checks, check{webhook.HeaderWebhookSignature, webhook.DiagnoseStandard(headers[webhook.HeaderWebhookID],
			headers[webhook.HeaderWebhookTimestamp], headers[webhook.HeaderWebhookSignature], body, *secret, *tolerance, now)})
	}
	var failed []string
	for _, c := range checks {
		if len(checks) > 1 {
			fmt.Fprintf(stdout, "%s: ", c.name)
		}
		fmt.Fprintln(stdout, c.d.String())
		if !c.d.OK() {
			failed = append(failed, fmt.Sprintf("%s: %s", c.name, c.d.Finding))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("webhook verify: the signature does not verify (%s)", strings.Join(failed, "; "))
	}
	return nil
}

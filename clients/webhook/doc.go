// Package webhook signs, verifies and delivers HelpDeskFlow's webhook
// requests.
//
// Signing: every delivery carries the header
//
//	X-HDF-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
//
// with one v1 per secret in use: while a secret is being rotated the header
// holds the new secret's signature first and the previous one's after it.
// Sign builds the header, Verify checks it in constant time, and Diagnose
// explains to a human why a signature does not verify (the `helpdeskflow
// webhook verify` command prints it).
//
// Every delivery also carries the Standard Webhooks headers
// (https://www.standardwebhooks.com):
//
//	webhook-id:        the event id
//	webhook-timestamp: <unix seconds>
//	webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>
//
// with one space-separated v1 entry per secret in use, where the key is
// the base64 text after the secret's whsec_ prefix, decoded (StandardKey).
// NewSecret makes secrets the spec's libraries accept; SignStandard,
// VerifyStandard and DiagnoseStandard are this scheme's Sign, Verify and
// Diagnose.
//
// Delivering: a Sender POSTs one attempt and classifies its failure
// (ErrorClassTimeout, ErrorClassTLSCertificateExpired, …). It refuses to
// connect to loopback, private, link-local and other internal addresses
// unless its Config allows them: the outbound address policy of package
// egress, which every client of a user-named host shares. The check runs
// on the address actually dialled, after DNS resolution, so a name that
// resolves (or re-resolves) to an internal address is refused too.
// ValidateURL applies the same rules to a URL at subscription time, as far
// as they can be decided without DNS.
//
// The package depends on the standard library and egress only.
package webhook

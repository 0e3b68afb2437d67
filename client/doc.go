// Package client is the Go client of the HelpDeskFlow API: typed requests
// and responses for tickets, customers, messages, webhooks and the change
// feed (/v1/events), checked against the served OpenAPI document
// (http/openapi.json) by its tests.
//
// Every POST and PATCH carries an Idempotency-Key, one per logical call and
// the same on each of its retries, so a retried create never creates
// twice. A call is retried on 429 after the Retry-After the server names,
// and on 5xx answers, connection errors and idempotency_key_in_use with
// jittered exponential backoff, at most MaxAttempts times in all, never
// past the context's deadline. Lists and the feed are paged by iterators
// (iter.Seq2). Every request has a timeout: the *http.Client's (30 s by
// default, see WithTimeout and WithHTTPClient). Errors the API answers are
// *Error, with its code, message, details and request id.
//
// This package is the API's client: it makes outbound HTTP requests to the
// base URL it is given and imports nothing of the server but the webhook
// signature check (clients/webhook).
package client

// Package helpdeskflow holds the domain of the HelpDeskFlow help-desk backend:
// tickets, customers, events and their ids, the stored event type names, and
// the one error type whose codes the HTTP layer maps to status codes.
//
// It imports only the standard library and github.com/google/uuid, so every
// other package can depend on it.
package helpdeskflow

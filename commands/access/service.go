// Package access is the write side of workspaces and who may use them:
// creating a workspace with its first admin key, API keys, the IP
// blocklist and rate limits, each recorded on the workspace's stream and
// effective on every API process when the command returns. It knows
// storage only through the interfaces in store.go.
package access

// Service handles workspace, API key and settings commands. It is safe
// for concurrent use.
type Service struct {
	store Store
}

// New returns a Service on store.
func New(store Store) *Service {
	return &Service{store: fieldNamingStore{store}}
}

package http

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/integrations/linkedprofiles"
)

// LinkedProfiles looks a customer up in the workspace's Shopify and
// Stripe connections (linkedprofiles.Linker).
type LinkedProfiles interface {
	Refresh(ctx context.Context, workspaceID, id uuid.UUID) (helpdeskflow.Customer, []linkedprofiles.Outcome, error)
}

type lookupJSON struct {
	ConnectionID uuid.UUID `json:"integration_id"`
	Provider     string    `json:"provider"`
	Account      string    `json:"account"`
	Status       string    `json:"status"`
	ExternalID   *string   `json:"external_id"`
	URL          *string   `json:"url"`
	ErrorClass   *string   `json:"error_class"`
	Error        *string   `json:"error"`
}

// handleLinkedProfilesRefresh is POST
// /v1/customers/{id}/linked-profiles/refresh: the customer's email is
// looked up in every active Shopify and Stripe connection now; what is
// found is attached as linked profiles. 200 with the customer and one
// result per connection (linked, not_found or error, with the error's
// class and what to do); 409 when nothing is connected.
func (s *Server) handleLinkedProfilesRefresh(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := pathID(p, "id", "customer")
	if err != nil {
		return err
	}
	if s.cfg.LinkedProfiles == nil {
		return helpdeskflow.Errorf(helpdeskflow.EUnavailable, "linked profiles need HDF_SECRET_KEYS on this server")
	}
	c, outcomes, err := s.cfg.LinkedProfiles.Refresh(r.Context(), principalOf(r.Context()).WorkspaceID, id)
	if err != nil {
		return err
	}
	results := make([]lookupJSON, 0, len(outcomes))
	for _, o := range outcomes {
		results = append(results, lookupJSON{ConnectionID: o.ConnectionID, Provider: o.Provider, Account: o.Account, Status: o.Status,
			ExternalID: nonEmpty(o.ExternalID), URL: nonEmpty(o.URL), ErrorClass: nonEmpty(o.ErrorClass), Error: nonEmpty(o.Error)})
	}
	setETag(w, c.Version)
	writeJSON(w, http.StatusOK, map[string]any{"customer": toCustomerWithTicketsJSON(c), "results": results})
	return nil
}

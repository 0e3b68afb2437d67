package http

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// openAPIDocument is the OpenAPI 3.1 document of the API, served at
// GET /v1/openapi.json. It describes every route of table(): the tests
// fail when a route is missing from it (or it has an operation no route
// serves) and validate real requests and responses against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 document that GET
// /v1/openapi.json serves (JSON). The caller must not modify it.
func OpenAPIDocument() []byte { return openAPIDocument }

// handleOpenAPI is GET /v1/openapi.json: the embedded document, public,
// cacheable for five minutes.
func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDocument) //nolint:errcheck // the client went away; nothing to do
	return nil
}

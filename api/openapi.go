package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every route of routes(); a test checks that the two agree.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return openAPIDocument }

func (s *Server) getOpenAPI(w http.ResponseWriter, _ *http.Request, _ *principal) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err := w.Write(openAPIDocument)
	return err
}

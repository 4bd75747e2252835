package app

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the whole API (API.md's routes and
// the operations endpoints), served at /api/v1/openapi.json. TestOpenAPI
// holds it and the router to each other.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI document.
func OpenAPI() []byte { return openAPI }

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(openAPI)
}

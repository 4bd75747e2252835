package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
)

// readyTimeout bounds the checks of /readyz.
const readyTimeout = 5 * time.Second

type statusJSON struct {
	Status string `json:"status"`
}

// healthz answers as long as the process serves requests.
func (a *api) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, r, http.StatusOK, statusJSON{"ok"})
}

// readyz answers 200 when the index and the blob store answer, else 503.
func (a *api) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := a.svc.Ping(ctx); err != nil {
		return fmt.Errorf("%w: not ready: %w", ErrNotReady, err)
	}
	return writeJSON(w, r, http.StatusOK, statusJSON{"ready"})
}

package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/index"
)

// Changes is what the API needs to serve the change feed (API.md,
// "Changes"). Errors: index.ErrInvalid for a cursor that does not parse
// (400), index.ErrGone for one older than the kept history (410).
type Changes interface {
	// Changes returns the page after q.After, waiting up to wait (at most
	// index.MaxChangeWait) for a commit when there is none yet.
	Changes(ctx context.Context, q index.ChangeQuery, wait time.Duration) (index.ChangePage, error)
	// ChangesHead returns the cursor of the latest change.
	ChangesHead(ctx context.Context) (string, error)
}

// ErrChangesNotConfigured answers the feed's routes when Options.Changes is
// nil (503): the index engine keeps no feed.
var ErrChangesNotConfigured = errors.New("httpapi: the change feed is not available")

type changeJSON struct {
	Cursor     string    `json:"cursor"`
	Kind       string    `json:"kind"`
	UUID       uuid.UUID `json:"uuid"`
	Collection uuid.UUID `json:"collection"`
	Version    *int64    `json:"version"`
	Event      string    `json:"event"`
	At         time.Time `json:"at"`
}

type changesJSON struct {
	Items      []changeJSON `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

func changeView(c index.FeedChange) changeJSON {
	j := changeJSON{
		Cursor: c.Cursor, Kind: c.Kind.String(), UUID: c.ID, Collection: c.Collection,
		Event: c.Event.String(), At: c.At.UTC(),
	}
	if c.Version > 0 {
		v := c.Version
		j.Version = &v
	}
	return j
}

// changeQuery reads ?after, ?limit, ?collection and ?wait.
func changeQuery(r *http.Request) (index.ChangeQuery, time.Duration, error) {
	q := r.URL.Query()
	cq := index.ChangeQuery{After: q.Get("after")}
	if _, err := index.ParseChangeCursor(cq.After); err != nil {
		return cq, 0, badRequest("after: %q is not a change cursor", cq.After)
	}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > index.MaxLimit {
			return cq, 0, badRequest("limit must be an integer from 1 to %d, not %q", index.MaxLimit, s[0])
		}
		cq.Limit = n
	}
	if s, ok := q["collection"]; ok {
		id, err := index.ParseUUID(s[0])
		if err != nil {
			return cq, 0, badRequest("collection: %q is not a UUID", s[0])
		}
		cq.Collection = id
	}
	var wait time.Duration
	if s, ok := q["wait"]; ok {
		d, err := time.ParseDuration(s[0])
		if err != nil {
			// Whole seconds without a unit, as in wait=30.
			n, nerr := strconv.Atoi(s[0])
			if nerr != nil {
				return cq, 0, badRequest("wait: %q is not a duration such as 30s", s[0])
			}
			d = time.Duration(n) * time.Second
		}
		if d < 0 || d > index.MaxChangeWait {
			return cq, 0, badRequest("wait must be from 0s to %s, not %q", index.MaxChangeWait, s[0])
		}
		wait = d
	}
	return cq, wait, nil
}

func (a *api) changes(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if a.opt.Changes == nil {
		return ErrChangesNotConfigured
	}
	q, wait, err := changeQuery(r)
	if err != nil {
		return err
	}
	page, err := a.opt.Changes.Changes(r.Context(), q, wait)
	if err != nil {
		return err
	}
	out := changesJSON{Items: make([]changeJSON, len(page.Items)), NextCursor: page.NextCursor}
	for i, c := range page.Items {
		out.Items[i] = changeView(c)
	}
	return writeJSON(w, r, http.StatusOK, out)
}

func (a *api) changesHead(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if a.opt.Changes == nil {
		return ErrChangesNotConfigured
	}
	cur, err := a.opt.Changes.ChangesHead(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, struct {
		Cursor string `json:"cursor"`
	}{cur})
}

// FeedChanges serves the feed of f as it is (no metrics): what a test or
// an embedding program plugs into Options.Changes.
func FeedChanges(f index.ChangeFeed) Changes { return feedChanges{f} }

type feedChanges struct{ f index.ChangeFeed }

func (c feedChanges) Changes(ctx context.Context, q index.ChangeQuery, wait time.Duration) (index.ChangePage, error) {
	return index.WaitChanges(ctx, c.f, q, wait)
}

func (c feedChanges) ChangesHead(ctx context.Context) (string, error) { return c.f.ChangesHead(ctx) }

package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// ErrGone: the feed no longer holds the changes after a cursor (it is older
// than the server's history, --changes-retention). A cache that follows
// the feed must reload what it holds and follow again from ChangesHead.
var ErrGone = errors.New("client: change history gone")

// Change is one committed write (API.md, "Changes").
type Change struct {
	Cursor     string    `json:"cursor"`
	Kind       string    `json:"kind"` // collection, unit or asset
	UUID       uuid.UUID `json:"uuid"`
	Collection uuid.UUID `json:"collection"`
	// Version is the number the event made or removed; nil for draft
	// events and the deletion of a whole entity.
	Version *int64 `json:"version"`
	// Event is created, published, updated, draft_saved, draft_deleted or
	// deleted.
	Event string    `json:"event"`
	At    time.Time `json:"at"`
}

// ChangeQuery selects a page of the feed.
type ChangeQuery struct {
	// After is a cursor (a NextCursor, a Change's Cursor, ChangesHead);
	// empty starts at the oldest change the server keeps.
	After string
	// Limit sizes the page (0: the server's default of 100; at most 1000).
	Limit int
	// Wait, when there is nothing after the cursor, holds the request until
	// a commit or until Wait has passed (at most 60s).
	Wait time.Duration
	// Collection, unless uuid.Nil, keeps only that collection's changes.
	Collection uuid.UUID
}

// ChangePage is a page of the feed; NextCursor is always set.
type ChangePage struct {
	Items      []Change `json:"items"`
	NextCursor string   `json:"next_cursor"`
}

// Changes returns the changes after q.After, oldest first. A cursor the
// server no longer holds is an error matching ErrGone.
func (c *Client) Changes(ctx context.Context, q ChangeQuery) (ChangePage, error) {
	v := url.Values{}
	if q.After != "" {
		v.Set("after", q.After)
	}
	if q.Limit < 0 {
		return ChangePage{}, fmt.Errorf("%w: limit %d", ErrInvalid, q.Limit)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Wait > 0 {
		v.Set("wait", q.Wait.String())
	}
	if q.Collection != uuid.Nil {
		v.Set("collection", q.Collection.String())
	}
	var p ChangePage
	if err := c.get(ctx, apiPrefix+"/changes", v, &p); err != nil {
		return ChangePage{}, err
	}
	if p.NextCursor == "" {
		return ChangePage{}, fmt.Errorf("client: GET %s/changes: the answer has no next_cursor", apiPrefix)
	}
	if p.Items == nil {
		p.Items = []Change{}
	}
	return p, nil
}

// ChangesHead returns the cursor of the latest change: follow from it to
// see only what is committed from now on.
func (c *Client) ChangesHead(ctx context.Context) (string, error) {
	var out struct {
		Cursor string `json:"cursor"`
	}
	if err := c.get(ctx, apiPrefix+"/changes/head", nil, &out); err != nil {
		return "", err
	}
	return out.Cursor, nil
}

// DefaultFollowWait is how long each of a Follower's requests waits for a
// commit.
const DefaultFollowWait = 30 * time.Second

// Follower reads the feed page after page from its cursor, long-polling,
// and resumes from its cursor after a failure. Use one Follower from one
// goroutine at a time.
type Follower struct {
	c *Client
	q ChangeQuery
	// Forever keeps waiting for changes once caught up; false stops the
	// iteration at the first empty page.
	Forever bool
	// OnRetry, when set, hears of each failure the Follower rides out (a
	// server or network that does not answer) before it tries again.
	OnRetry func(err error, wait time.Duration)
}

// Follow returns a Follower from q.After (q.Wait 0: DefaultFollowWait).
func (c *Client) Follow(q ChangeQuery) *Follower {
	if q.Wait <= 0 {
		q.Wait = DefaultFollowWait
	}
	return &Follower{c: c, q: q}
}

// Cursor is where the Follower is: after every change it yielded (and
// after the other collections' changes when it filters). Store it with
// what the changes were applied to, and pass it as After to resume.
func (f *Follower) Cursor() string { return f.q.After }

// Changes iterates over the changes from the cursor on. Temporary failures
// (the server or the network does not answer: errors.Is IsTemporary) are
// retried without end, with a growing pause up to the client's MaxBackoff;
// any other error is yielded and ends the iteration: one matching ErrGone
// means the history after the cursor was pruned. The cursor moves past a
// change before it is yielded, so breaking out of the loop and calling
// Changes again resumes after the last change seen.
func (f *Follower) Changes(ctx context.Context) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		failures := 0
		for {
			q := f.q
			if !f.Forever {
				q.Wait = 0
			}
			p, err := f.c.Changes(ctx, q)
			switch {
			case err == nil:
				failures = 0
			case ctx.Err() != nil:
				yield(Change{}, fmt.Errorf("client: follow changes: %w", ctx.Err()))
				return
			case IsTemporary(err):
				failures++
				wait := f.c.wait(failures, 0)
				if f.OnRetry != nil {
					f.OnRetry(err, wait)
				}
				if serr := f.c.sleep(ctx, wait); serr != nil {
					yield(Change{}, fmt.Errorf("client: follow changes: %w (after %w)", serr, err))
					return
				}
				continue
			default:
				yield(Change{}, err)
				return
			}
			for _, ch := range p.Items {
				f.q.After = ch.Cursor
				if !yield(ch, nil) {
					return
				}
			}
			f.q.After = p.NextCursor
			if len(p.Items) == 0 && !f.Forever {
				return
			}
		}
	}
}

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/google/uuid"
)

func unitPath(id uuid.UUID) string { return apiPrefix + "/units/" + id.String() }

func checkOLX(olx string) error {
	if !utf8.ValidString(olx) {
		// encoding/json would replace the bad bytes silently: refuse instead.
		return fmt.Errorf("%w: OLX is not valid UTF-8", ErrInvalid)
	}
	return nil
}

// CreateUnit creates a unit: version 1, or its draft when nu.Draft.
func (c *Client) CreateUnit(ctx context.Context, nu NewUnit) (Unit, error) {
	if err := checkOLX(nu.OLX); err != nil {
		return Unit{}, err
	}
	r, err := jsonRequest(http.MethodPost, apiPrefix+"/units", nu)
	if err != nil {
		return Unit{}, err
	}
	var out Unit
	_, err = c.call(ctx, r.creating(), &out)
	return out, err
}

// Unit returns a version of a unit (Latest, Draft or Version(n)).
func (c *Client) Unit(ctx context.Context, id uuid.UUID, at At) (Unit, error) {
	p, err := versionedPath(unitPath(id), at)
	if err != nil {
		return Unit{}, err
	}
	var out Unit
	return out, c.get(ctx, p, nil, &out)
}

// UnitExpanded is Unit with ?expand=links: each link carries what it
// resolves to now (Resolved, nil when the target has no such version).
func (c *Client) UnitExpanded(ctx context.Context, id uuid.UUID, at At) (Unit, error) {
	p, err := versionedPath(unitPath(id), at)
	if err != nil {
		return Unit{}, err
	}
	var out Unit
	return out, c.get(ctx, p, url.Values{"expand": {"links"}}, &out)
}

// NewUnitVersion adds a version to a unit. created is false when the
// change was identical to the latest version, which the server returns
// instead (and nothing is created).
func (c *Client) NewUnitVersion(ctx context.Context, id uuid.UUID, ch UnitChange) (u Unit, created bool, err error) {
	if err := checkOLX(ch.OLX); err != nil {
		return Unit{}, false, err
	}
	r, err := jsonRequest(http.MethodPost, unitPath(id)+"/versions", ch)
	if err != nil {
		return Unit{}, false, err
	}
	status, err := c.call(ctx, r.creating(), &u)
	return u, status == http.StatusCreated, err
}

// PutUnitDraft creates or replaces the draft of a unit.
func (c *Client) PutUnitDraft(ctx context.Context, id uuid.UUID, ch UnitChange) (Unit, error) {
	if err := checkOLX(ch.OLX); err != nil {
		return Unit{}, err
	}
	r, err := jsonRequest(http.MethodPut, unitPath(id)+"/draft", ch)
	if err != nil {
		return Unit{}, err
	}
	var out Unit
	_, err = c.call(ctx, r, &out)
	return out, err
}

// PublishUnitDraft makes the draft the next numbered version.
func (c *Client) PublishUnitDraft(ctx context.Context, id uuid.UUID) (Unit, error) {
	r := (&request{method: http.MethodPost, path: unitPath(id) + "/draft/publish"}).creating()
	var out Unit
	_, err := c.call(ctx, r, &out)
	return out, err
}

// DeleteUnitDraft deletes the draft of a unit.
func (c *Client) DeleteUnitDraft(ctx context.Context, id uuid.UUID) error {
	_, err := c.call(ctx, &request{method: http.MethodDelete, path: unitPath(id) + "/draft", deleting: true}, nil)
	return err
}

// UnitVersions returns a page of a unit's history, newest first.
func (c *Client) UnitVersions(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[Unit], error) {
	return list[Unit](ctx, c, unitPath(id)+"/versions", opt)
}

// UnitOLX streams the OLX of a version of a unit. The caller must Close the
// Download.
func (c *Client) UnitOLX(ctx context.Context, id uuid.UUID, at At, opt GetOptions) (*Download, error) {
	p, err := versionedPath(unitPath(id), at)
	if err != nil {
		return nil, err
	}
	return c.download(ctx, p+"/olx", opt, false)
}

// UnitLinks returns the links of the latest version of a unit (every page
// of them, when the server pages the list).
func (c *Client) UnitLinks(ctx context.Context, id uuid.UUID) ([]Link, error) {
	links := []Link{}
	q := url.Values{}
	for pages := 0; ; pages++ {
		var raw json.RawMessage
		if err := c.get(ctx, unitPath(id)+"/links", q, &raw); err != nil {
			return nil, err
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '[' {
			var ls []Link
			if err := json.Unmarshal(raw, &ls); err != nil {
				return nil, fmt.Errorf("client: GET links of unit %s: %w", id, err)
			}
			return append(links, ls...), nil
		}
		var p Page[Link]
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("client: GET links of unit %s: %w", id, err)
		}
		links = append(links, p.Items...)
		if p.NextCursor == "" || pages > 1<<20 {
			return links, nil
		}
		q.Set("cursor", p.NextCursor)
	}
}

// UnitLinkedBy returns a page of the units whose latest published version
// links to this unit.
func (c *Client) UnitLinkedBy(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[LinkingUnit], error) {
	return list[LinkingUnit](ctx, c, unitPath(id)+"/linked-by", opt)
}

// DeleteUnit deletes a unit and all its versions.
func (c *Client) DeleteUnit(ctx context.Context, id uuid.UUID) error {
	_, err := c.call(ctx, &request{method: http.MethodDelete, path: unitPath(id), deleting: true}, nil)
	return err
}

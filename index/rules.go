package index

import (
	"fmt"

	"github.com/blockstore/blockstore/cas"
)

// The rules of a write, once for both engines: which version omitted fields
// come from, what a change makes of it, when it changes nothing, and what an
// entity's heads become. They are plain functions over the model: an engine
// reads and locks what they need, calls them, and stores what they decide.

// Heads is what a writer knows of a unit or an asset before it writes: which
// versions it has (the latest published one, the draft), the names they hold
// and their link sets. Both engines keep it in the entity's row or record, so
// the rules decide without reading versions.
type Heads struct {
	Latest      int64 // the latest published version; 0 while there is only a draft
	HasDraft    bool
	LatestName  string
	DraftName   string
	LatestLinks cas.Hash // units: the link set of the latest published version
	DraftLinks  cas.Hash // units: the link set of the draft
}

// Base returns the number of the base version (doc.go, "Base version") of a
// write: 0 for the draft. For a draft it is the draft when there is one,
// else the latest; for a published version the latest, else the draft. ok is
// false when the entity has neither.
func (h Heads) Base(draft bool) (version int64, ok bool) {
	switch {
	case draft && h.HasDraft:
		return 0, true
	case h.Latest > 0:
		return h.Latest, true
	case h.HasDraft:
		return 0, true
	}
	return 0, false
}

// Commit returns the heads once c is stored as the next published version,
// or (draft) as the draft. Heads{}.Commit gives a new entity's heads.
func (h Heads) Commit(c Content, draft bool) Heads {
	if draft {
		h.HasDraft, h.DraftName, h.DraftLinks = true, c.Name, c.LinkSet
		return h
	}
	h.Latest, h.LatestName, h.LatestLinks = h.Latest+1, c.Name, c.LinkSet
	return h
}

// PublishDraft returns the heads once the draft is the next numbered
// version; ErrNotFound when there is no draft.
func (h Heads) PublishDraft() (Heads, error) {
	if !h.HasDraft {
		return h, fmt.Errorf("%w: no draft to publish", ErrNotFound)
	}
	h.Latest, h.LatestName, h.LatestLinks = h.Latest+1, h.DraftName, h.DraftLinks
	return h.withoutDraft(), nil
}

// DeleteDraft returns the heads once the draft is deleted; ErrNotFound when
// there is no draft. empty reports that nothing is left: the draft was all
// there was of the entity, which then goes as DeleteEntity takes it.
func (h Heads) DeleteDraft() (next Heads, empty bool, err error) {
	if !h.HasDraft {
		return h, false, fmt.Errorf("%w: no draft to delete", ErrNotFound)
	}
	return h.withoutDraft(), h.Latest == 0, nil
}

func (h Heads) withoutDraft() Heads {
	h.HasDraft, h.DraftName, h.DraftLinks = false, "", cas.Hash{}
	return h
}

// Content is what a writer chooses for a unit or asset version, beside its
// number and time: what omitted fields keep and what "identical" compares.
type Content struct {
	Name           string
	MediaType      string // assets; "" for units
	Hash           cas.Hash
	GarbageCollect bool
	// Links are a unit's links, normalized with kinds filled in
	// (ResolveLinks); nil for assets. An engine may leave them out of a base
	// it read when the change gives links: NextVersion then needs only
	// LinkSet.
	Links []Link
	// LinkSet is LinkSetID(Links) for units, zero for assets.
	LinkSet cas.Hash
}

// Same reports whether a and b are the same version content: hash, name,
// media type, flag and link set.
func (a Content) Same(b Content) bool {
	return a.Hash == b.Hash && a.Name == b.Name && a.MediaType == b.MediaType &&
		a.GarbageCollect == b.GarbageCollect && a.LinkSet == b.LinkSet
}

// Content returns the content of u's first version (or draft), given its
// links resolved (ResolveLinks).
func (u NewUnit) Content(links []Link) Content {
	return Content{Name: u.Name, Hash: u.Hash, GarbageCollect: u.GarbageCollect, Links: links, LinkSet: LinkSetID(links)}
}

// Content returns the content of a's first version (or draft).
func (a NewAsset) Content() Content {
	return Content{Name: a.Name, MediaType: a.MediaType, Hash: a.Hash, GarbageCollect: a.GarbageCollect}
}

// Change is a new version or draft of a unit or an asset: nil fields keep the
// base version's value (API.md, "Omitted is not empty").
type Change struct {
	Hash           cas.Hash
	Name           *string
	MediaType      *string // assets only
	GarbageCollect *bool
	// Links, when given, replace the base's (a pointer to an empty slice
	// removes all). UnitChange.Change gives them as the writer did; the
	// engine resolves them (ResolveLinks) before NextVersion.
	Links *[]Link
}

// Change returns c as a Change, its links as the writer gave them.
func (c UnitChange) Change() Change {
	return Change{Hash: c.Hash, Name: c.Name, GarbageCollect: c.GarbageCollect, Links: c.Links}
}

// Change returns c as a Change.
func (c AssetChange) Change() Change {
	return Change{Hash: c.Hash, Name: c.Name, MediaType: c.MediaType, GarbageCollect: c.GarbageCollect}
}

// NextVersion applies ch to base, the content of the version h.Base(draft)
// names (nil when there is none: ErrNotFound), and returns the content to
// store. unchanged reports a published version identical to the latest
// published one: it creates nothing, and the writer answers with the latest.
// A draft is never unchanged: writing it replaces the draft.
func NextVersion(h Heads, base *Content, ch Change, draft bool) (next Content, unchanged bool, err error) {
	if base == nil {
		return Content{}, false, fmt.Errorf("%w: no version to change", ErrNotFound)
	}
	next = Content{
		Name:           deref(ch.Name, base.Name),
		MediaType:      deref(ch.MediaType, base.MediaType),
		Hash:           ch.Hash,
		GarbageCollect: deref(ch.GarbageCollect, base.GarbageCollect),
		Links:          base.Links,
		LinkSet:        base.LinkSet,
	}
	if ch.Links != nil {
		next.Links = *ch.Links
		next.LinkSet = LinkSetID(next.Links)
	}
	// When a published version is written and one exists, it is the base.
	unchanged = !draft && h.Latest > 0 && base.Same(next)
	return next, unchanged, nil
}

// NextCollection applies p to the latest version of a collection. unchanged
// reports a patch that changes nothing: UpdateCollection then creates no
// version.
func NextCollection(latest NewCollection, p CollectionPatch) (next NewCollection, unchanged bool) {
	next = NewCollection{
		CollectionFields: CollectionFields{
			Name:        deref(p.Name, latest.Name),
			Description: deref(p.Description, latest.Description),
			Owner:       deref(p.Owner, latest.Owner),
			Author:      deref(p.Author, latest.Author),
			License:     deref(p.License, latest.License),
		},
		GarbageCollect: deref(p.GarbageCollect, latest.GarbageCollect),
	}
	return next, next == latest
}

// LiveBlob returns the size of the blob h that a version names, given its
// registry row (found false when there is none): a version may only name a
// live blob, else *BlobMissingError.
func LiveBlob(h cas.Hash, row Blob, found bool) (int64, error) {
	if !found || row.State != BlobLive {
		return 0, &BlobMissingError{Hash: h}
	}
	return row.Size, nil
}

func deref[T any](p *T, def T) T {
	if p != nil {
		return *p
	}
	return def
}

package index

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// RecordChanges returns tx with every successful write recorded as a change
// in the same transaction (through a, normally tx itself). Engines wrap the
// Tx they hand to Update with it, so that both keep one rule for what is a
// change:
//
//   - a created entity: created (version 1), or draft_saved when it starts
//     as a draft;
//   - a new version: published (units and assets), updated (collections),
//     created when it is version 1 (a draft-only entity's draft published);
//     a write that creates nothing (identical to the latest) is no change;
//   - a draft written or deleted: draft_saved, draft_deleted (also when the
//     draft was all the entity had, and the entity goes with it);
//   - a deleted entity: deleted with Version 0. A recursive collection
//     deletion is one change, of the collection: its units and assets go
//     with it, and a follower drops what it holds of that collection.
//
// Sweeps record their own deletions (one per version or asset removed).
// ctx serves the reads a deletion needs to name the entity's collection.
func RecordChanges(ctx context.Context, tx Tx, a ChangeAppender) Tx {
	return &recordingTx{Tx: tx, ctx: ctx, a: a}
}

type recordingTx struct {
	Tx
	ctx context.Context
	a   ChangeAppender
}

func (r *recordingTx) add(kind Kind, id, coll uuid.UUID, version int64, ev ChangeEvent) error {
	if err := r.a.AppendChange(FeedChange{Kind: kind, ID: id, Collection: coll, Version: version, Event: ev}); err != nil {
		return fmt.Errorf("index: record change of %s: %w", id, err)
	}
	return nil
}

func versionEvent(version int64) ChangeEvent {
	if version == 1 {
		return EventCreated
	}
	return EventPublished
}

func (r *recordingTx) CreateCollection(c NewCollection) (Collection, error) {
	out, err := r.Tx.CreateCollection(c)
	if err != nil {
		return out, err
	}
	return out, r.add(KindCollection, out.ID, out.ID, out.Version, EventCreated)
}

func (r *recordingTx) UpdateCollection(id uuid.UUID, p CollectionPatch) (Collection, bool, error) {
	out, created, err := r.Tx.UpdateCollection(id, p)
	if err != nil || !created {
		return out, created, err
	}
	return out, created, r.add(KindCollection, id, id, out.Version, EventUpdated)
}

func (r *recordingTx) DeleteCollection(id uuid.UUID, recursive bool) error {
	if err := r.Tx.DeleteCollection(id, recursive); err != nil {
		return err
	}
	return r.add(KindCollection, id, id, 0, EventDeleted)
}

func (r *recordingTx) CreateUnit(nu NewUnit) (Unit, error) {
	u, err := r.Tx.CreateUnit(nu)
	if err != nil {
		return u, err
	}
	if nu.Draft {
		return u, r.add(KindUnit, u.ID, u.Collection, 0, EventDraftSaved)
	}
	return u, r.add(KindUnit, u.ID, u.Collection, u.Version, EventCreated)
}

func (r *recordingTx) CommitUnit(id uuid.UUID, c UnitChange, draft bool) (Unit, bool, error) {
	u, created, err := r.Tx.CommitUnit(id, c, draft)
	if err != nil || !created {
		return u, created, err
	}
	if draft {
		return u, created, r.add(KindUnit, id, u.Collection, 0, EventDraftSaved)
	}
	return u, created, r.add(KindUnit, id, u.Collection, u.Version, versionEvent(u.Version))
}

func (r *recordingTx) PublishUnitDraft(id uuid.UUID) (Unit, error) {
	u, err := r.Tx.PublishUnitDraft(id)
	if err != nil {
		return u, err
	}
	return u, r.add(KindUnit, id, u.Collection, u.Version, versionEvent(u.Version))
}

func (r *recordingTx) DeleteUnitDraft(id uuid.UUID) error {
	return r.deleteDraft(KindUnit, id, r.Tx.DeleteUnitDraft)
}

func (r *recordingTx) CreateAsset(na NewAsset) (Asset, error) {
	a, err := r.Tx.CreateAsset(na)
	if err != nil {
		return a, err
	}
	if na.Draft {
		return a, r.add(KindAsset, a.ID, a.Collection, 0, EventDraftSaved)
	}
	return a, r.add(KindAsset, a.ID, a.Collection, a.Version, EventCreated)
}

func (r *recordingTx) CommitAsset(id uuid.UUID, c AssetChange, draft bool) (Asset, bool, error) {
	a, created, err := r.Tx.CommitAsset(id, c, draft)
	if err != nil || !created {
		return a, created, err
	}
	if draft {
		return a, created, r.add(KindAsset, id, a.Collection, 0, EventDraftSaved)
	}
	return a, created, r.add(KindAsset, id, a.Collection, a.Version, versionEvent(a.Version))
}

func (r *recordingTx) PublishAssetDraft(id uuid.UUID) (Asset, error) {
	a, err := r.Tx.PublishAssetDraft(id)
	if err != nil {
		return a, err
	}
	return a, r.add(KindAsset, id, a.Collection, a.Version, versionEvent(a.Version))
}

func (r *recordingTx) DeleteAssetDraft(id uuid.UUID) error {
	return r.deleteDraft(KindAsset, id, r.Tx.DeleteAssetDraft)
}

// deleteDraft names the draft's collection before del removes it: the
// deletion leaves nothing to read it from.
func (r *recordingTx) deleteDraft(kind Kind, id uuid.UUID, del func(uuid.UUID) error) error {
	coll, found, err := r.collectionOf(id)
	if err != nil {
		return err
	}
	if err := del(id); err != nil {
		return err
	}
	if !found {
		// del succeeded, so the draft existed: unreachable unless the
		// engine's reads and writes disagree.
		return fmt.Errorf("index: record change of %s: the draft's collection is unknown", id)
	}
	return r.add(kind, id, coll, 0, EventDraftDeleted)
}

func (r *recordingTx) DeleteEntity(id uuid.UUID) error {
	kind, err := r.Tx.Kind(r.ctx, id)
	if err != nil {
		return r.Tx.DeleteEntity(id) // the engine's own answer (not found)
	}
	coll, _, err := r.collectionOf(id)
	if err != nil {
		return err
	}
	if err := r.Tx.DeleteEntity(id); err != nil {
		return err
	}
	if kind == KindCollection {
		coll = id
	}
	return r.add(kind, id, coll, 0, EventDeleted)
}

// collectionOf reads the collection of a unit or asset from its latest
// version or its draft (a draft-only entity has only the draft).
func (r *recordingTx) collectionOf(id uuid.UUID) (uuid.UUID, bool, error) {
	es, err := r.Tx.Lookup(r.ctx, []Ref{{ID: id}, {ID: id, Draft: true}})
	if err != nil {
		return uuid.Nil, false, err
	}
	for _, e := range es {
		switch {
		case e.Unit != nil:
			return e.Unit.Collection, true, nil
		case e.Asset != nil:
			return e.Asset.Collection, true, nil
		case e.Collection != nil:
			return e.Collection.ID, true, nil
		}
	}
	return uuid.Nil, false, nil
}

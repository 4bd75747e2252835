package pgindex

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Creating a unit or an asset whose links all give their kind (the usual
// create) is one call of blockstore_create_member (migration 00010): the
// locking reads, the checks and the writes in one statement instead of a
// dozen, which is what a create costs PostgreSQL's CPU (each statement a
// bind, a plan-cache lookup and an executor start-up). The inline blob that
// the create names, when PutInlineBlob queued it last, goes in the same
// call. Other creates (a link without its kind) read the targets' kinds
// first (createMember).

// sqlCreateMember calls blockstore_create_member.
const sqlCreateMember = `SELECT status, blob_state, size, found_ids, found_kinds FROM blockstore_create_member(
	$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`

// The statuses of blockstore_create_member.
const (
	createStored       = 0
	createNoCollection = 1
	createBlobMissing  = 2
	createLinkMismatch = 3
)

// pendingInline is the inline blob PutInlineBlob queued last.
type pendingInline struct {
	q    *pgx.QueuedQuery
	hash cas.Hash
	b    []byte
	at   time.Time
}

// takeInline returns the bytes and time of the inline blob h when its write
// is the last pending statement, and takes that statement off the queue
// (the caller sends them with its own call); nil otherwise.
func (t *tx) takeInline(h cas.Hash) *pendingInline {
	p := t.inline
	t.inline = nil
	if p == nil || p.hash != h || len(t.pending) == 0 || t.pending[len(t.pending)-1] != p.q {
		return nil
	}
	t.pending = t.pending[:len(t.pending)-1]
	return p
}

// createOne creates a member of coll with the given links, resolved as the
// writer gave them (links), in one statement; the errors are createMember's,
// in the same order (collection, links, blob).
func (t *tx) createOne(kind index.Kind, coll uuid.UUID, hash cas.Hash, given, links []index.Link, draft bool,
	content func(links []index.Link) index.Content) (*verRow, error) {
	t.stamp()
	id := uuid.New()
	nv := &newVersion{kind: kind, Content: content(links)}
	names := index.Heads{}.Commit(nv.Content, draft).HeldNames()
	if names == nil {
		names = []string{}
	}
	var (
		media     any
		targets   []uuid.UUID
		kinds     []int16
		pins      []int64
		lockIDs   []uuid.UUID
		lockKinds []int16
	)
	switch kind {
	case index.KindAsset:
		media = nv.MediaType
	case index.KindUnit:
		targets, kinds, pins = make([]uuid.UUID, len(nv.Links)), make([]int16, len(nv.Links)), make([]int64, len(nv.Links))
		for i, l := range nv.Links {
			targets[i], kinds[i], pins[i] = l.Target, int16(l.Kind), l.Version
		}
		lockIDs = index.LinkTargets(nv.Links)
		slices.SortFunc(lockIDs, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		lockKinds = make([]int16, len(lockIDs))
		for i, target := range lockIDs {
			for _, l := range nv.Links {
				if l.Target == target {
					lockKinds[i] = int16(l.Kind)
					break
				}
			}
		}
	}
	var (
		inlineBytes []byte
		inlineAt    any
	)
	if p := t.takeInline(hash); p != nil {
		inlineBytes, inlineAt = p.b, p.at
	}
	var (
		status     int16
		blobState  *int16
		size       *int64
		foundIDs   [][16]byte
		foundKinds []int16
	)
	b := &pgx.Batch{}
	b.Queue(sqlCreateMember, id, int16(kind), coll, t.now, draft, nv.GarbageCollect, nv.Name, names, hash[:], media,
		nv.setID(), targets, kinds, pins, lockIDs, lockKinds, index.TargetsOfKind(nv.Links, index.KindAsset), inlineBytes, inlineAt).QueryRow(func(row pgx.Row) error {
		return row.Scan(&status, &blobState, &size, &foundIDs, &foundKinds)
	})
	if err := t.run(t.ctx, b); err != nil {
		return nil, err
	}
	switch status {
	case createStored:
	case createNoCollection:
		return nil, fmt.Errorf("collection %s: %w", coll, index.ErrNotFound)
	case createLinkMismatch:
		locked := make(map[uuid.UUID]index.Kind, len(foundIDs))
		for i, fid := range foundIDs {
			locked[fid] = index.Kind(foundKinds[i])
		}
		if _, err := index.ResolveLinks(given, locked); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("pgindex: link targets changed kind while being locked")
	case createBlobMissing:
		var row index.Blob
		if blobState != nil {
			row.State = index.BlobState(*blobState)
		}
		_, err := index.LiveBlob(hash, row, blobState != nil)
		return nil, err
	default:
		return nil, fmt.Errorf("pgindex: blockstore_create_member answered status %d", status)
	}
	if size == nil {
		return nil, fmt.Errorf("pgindex: blockstore_create_member answered no size")
	}
	nv.size = *size
	version := int64(1)
	if draft {
		version = 0
	}
	return nv.row(id, coll, version, t, true), nil
}

package refs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// DefaultMediaType is the media type of an asset created without one.
const DefaultMediaType = "application/octet-stream"

// AssetContent is where the bytes of an asset version come from: either a
// blob already stored (Hash) or a body to store (Body, read to its end).
// Size is the count of bytes Body announced (a Content-Length), or 0 when
// unknown: the blob store sizes its buffers by it, and a body of any other
// count fails and stores nothing.
type AssetContent struct {
	Hash *cas.Hash
	Body io.Reader
	Size int64
}

// NewAsset is the first version (or, with Draft, the first draft) of an
// asset. A nil MediaType is DefaultMediaType.
type NewAsset struct {
	Collection     uuid.UUID
	Name           string
	MediaType      *string
	GarbageCollect bool
	Draft          bool
	Content        AssetContent
}

// AssetChange is a new version or a draft of an asset; nil fields keep the
// base version's value.
type AssetChange struct {
	Name           *string
	MediaType      *string
	GarbageCollect *bool
	Content        AssetContent
}

// CreateAsset stores the content, then creates the asset at version 1 (or
// its draft).
func (s *Service) CreateAsset(ctx context.Context, a NewAsset, req Request[index.Asset]) (Answer, error) {
	mt := DefaultMediaType
	if a.MediaType != nil {
		mt = *a.MediaType
	}
	if err := checkTexts("name", a.Name, "media type", mt); err != nil {
		return Answer{}, err
	}
	return writeAsset(ctx, s, a.Content, req, func(tx index.Tx, h cas.Hash) (index.Asset, bool, error) {
		asset, err := tx.CreateAsset(index.NewAsset{
			Collection:     a.Collection,
			Name:           a.Name,
			MediaType:      mt,
			Hash:           h,
			GarbageCollect: a.GarbageCollect,
			Draft:          a.Draft,
		})
		if err != nil {
			return asset, false, fmt.Errorf("refs: create asset in collection %s: %w", a.Collection, err)
		}
		return asset, true, nil
	})
}

// CommitAsset adds the next published version of an asset. A version
// identical to the latest creates nothing (Render is told created false).
func (s *Service) CommitAsset(ctx context.Context, id uuid.UUID, c AssetChange, req Request[index.Asset]) (Answer, error) {
	return s.commitAsset(ctx, id, c, false, req)
}

// PutAssetDraft creates or replaces the draft of an asset.
func (s *Service) PutAssetDraft(ctx context.Context, id uuid.UUID, c AssetChange) (index.Asset, error) {
	var out index.Asset
	_, err := s.commitAsset(ctx, id, c, true, Request[index.Asset]{Render: keep(&out)})
	return out, err
}

func (s *Service) commitAsset(ctx context.Context, id uuid.UUID, c AssetChange, draft bool, req Request[index.Asset]) (Answer, error) {
	if err := checkTexts("name", c.Name, "media type", c.MediaType); err != nil {
		return Answer{}, err
	}
	return writeAsset(ctx, s, c.Content, req, func(tx index.Tx, h cas.Hash) (index.Asset, bool, error) {
		a, created, err := tx.CommitAsset(id, index.AssetChange{
			Hash:           h,
			Name:           c.Name,
			MediaType:      c.MediaType,
			GarbageCollect: c.GarbageCollect,
		}, draft)
		if err != nil {
			return a, false, fmt.Errorf("refs: commit asset %s: %w", id, err)
		}
		return a, created, nil
	})
}

// writeAsset stores the content of an asset write and commits it. A body is
// staged first (its hash is the request body's hash in the fingerprint), so
// that a replay stores nothing; it becomes live only when the write goes
// ahead.
func writeAsset(ctx context.Context, s *Service, content AssetContent, req Request[index.Asset],
	apply func(tx index.Tx, h cas.Hash) (index.Asset, bool, error)) (Answer, error) {
	if content.Hash != nil {
		h := *content.Hash
		op := &writeOp[index.Asset]{req: req, body: bodyHash(req.Body)}
		op.apply = func(tx index.Tx) (index.Asset, bool, error) { return apply(tx, h) }
		if ans, ok, err := replayed(ctx, s.idx, op); ok || err != nil {
			return ans, err
		}
		return commit(ctx, s, op)
	}
	if content.Body == nil {
		return Answer{}, fmt.Errorf("%w: an asset needs a body or a hash", ErrInvalid)
	}
	st, err := s.stage(ctx, content.Body, content.Size)
	if err != nil {
		return Answer{}, err
	}
	defer st.discard()
	op := &writeOp[index.Asset]{req: req, body: st.hash}
	if req.Body != nil {
		op.body = *req.Body
	}
	if ans, ok, err := replayed(ctx, s.idx, op); ok || err != nil {
		return ans, err
	}
	op.restore = func(ctx context.Context) error { return s.settle(ctx, st) }
	if err := op.restore(ctx); err != nil {
		return Answer{}, err
	}
	op.apply = func(tx index.Tx) (index.Asset, bool, error) { return apply(tx, st.hash) }
	ans, err := commit(ctx, s, op)
	if errors.Is(err, index.ErrBlobMissing) {
		// The client sent the bytes: a 404 would ask it to upload them,
		// which it just did. It must send the request again.
		return ans, fmt.Errorf("%w: a sweep kept taking the bytes of this request: %w", ErrRetry, err)
	}
	return ans, err
}

// PublishAssetDraft turns the draft of an asset into its next version;
// index.ErrNotFound when there is no draft.
func (s *Service) PublishAssetDraft(ctx context.Context, id uuid.UUID, req Request[index.Asset]) (Answer, error) {
	op := &writeOp[index.Asset]{req: req, body: bodyHash(req.Body)}
	op.apply = func(tx index.Tx) (index.Asset, bool, error) {
		a, err := tx.PublishAssetDraft(id)
		if err != nil {
			return a, false, fmt.Errorf("refs: publish draft of asset %s: %w", id, err)
		}
		return a, true, nil
	}
	return commit(ctx, s, op)
}

// DeleteAssetDraft deletes the draft of an asset; index.ErrNotFound when
// there is none.
func (s *Service) DeleteAssetDraft(ctx context.Context, id uuid.UUID) error {
	err := s.update(ctx, func(tx index.Tx) error { return tx.DeleteAssetDraft(id) })
	if err != nil {
		return fmt.Errorf("refs: delete draft of asset %s: %w", id, err)
	}
	return nil
}

// DeleteAsset deletes an asset with all its versions; index.ErrNotFound
// when id is not an asset.
func (s *Service) DeleteAsset(ctx context.Context, id uuid.UUID) error {
	return s.deleteEntity(ctx, index.KindAsset, id)
}

// Asset returns the version of an asset that ref names.
func (s *Service) Asset(ctx context.Context, ref index.Ref) (index.Asset, error) {
	a, err := s.idx.Asset(ctx, ref)
	if err != nil {
		return a, fmt.Errorf("refs: read asset %s: %w", ref, err)
	}
	return a, nil
}

// AssetVersions lists the versions of an asset, newest first.
func (s *Service) AssetVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	p, err := s.idx.AssetVersions(ctx, id, opt)
	if err != nil {
		return p, fmt.Errorf("refs: list versions of asset %s: %w", id, err)
	}
	return p, nil
}

// OpenAsset returns the version of an asset that ref names and a reader of
// its bytes. The caller must Close the reader.
func (s *Service) OpenAsset(ctx context.Context, ref index.Ref) (index.Asset, cas.Reader, error) {
	a, err := s.Asset(ctx, ref)
	if err != nil {
		return a, nil, err
	}
	r, err := s.open(ctx, a.Hash)
	if err != nil {
		return a, nil, fmt.Errorf("refs: open content of asset %s: %w", ref, err)
	}
	return a, r, nil
}

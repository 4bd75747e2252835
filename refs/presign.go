package refs

import (
	"context"
	"fmt"
	"net/url"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Presigns reports whether the blob store hands out presigned URLs (S3),
// so that a `Prefer: redirect` may be honoured.
func (s *Service) Presigns() bool {
	_, ok := s.blobs.Backend().(cas.Presigner)
	return ok
}

// PresignBlob returns a short-lived URL of the bytes of the live blob h,
// for a client that asked to be redirected, answering with contentType
// when it is given. The registry is asked first, so that an absent blob is
// index.ErrNotFound rather than a URL that answers 404;
// cas.ErrNotPresignable when the blob store cannot sign URLs.
func (s *Service) PresignBlob(ctx context.Context, h cas.Hash, contentType string) (*url.URL, error) {
	if _, err := s.BlobInfo(ctx, h); err != nil {
		return nil, err
	}
	u, err := s.blobs.PresignGet(ctx, h, contentType)
	if err != nil {
		return nil, fmt.Errorf("refs: presign blob %s: %w", h, err)
	}
	return u, nil
}

// PresignAsset returns a short-lived URL of the bytes of a, an asset
// version read from the index (which names only stored blobs), as
// PresignBlob does.
func (s *Service) PresignAsset(ctx context.Context, a index.Asset, contentType string) (*url.URL, error) {
	u, err := s.blobs.PresignGet(ctx, a.Hash, contentType)
	if err != nil {
		return nil, fmt.Errorf("refs: presign content of asset %s: %w", a.ID, err)
	}
	return u, nil
}

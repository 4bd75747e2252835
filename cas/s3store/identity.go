package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/cas"
)

// storeIDKey, under the prefix, holds the store id that binds the prefix to
// its index (DESIGN.md, invariant 6). It is outside blobs/ and tmp/, the
// only key spaces that Walk lists and that deletes and CleanTemp touch
// (ownsKey), and it is written in one PUT, never as a multipart upload that
// CleanTemp could abort: no sweep, verify or cleanup ever sees it.
const storeIDKey = "STORE-ID"

// maxStoreIDSize bounds what StoreID reads: an id is a UUID.
const maxStoreIDSize = 1 << 10

// StoreIDKey is the key of the store id object, for messages.
func (s *Store) StoreIDKey() string { return s.prefix + storeIDKey }

// StoreID returns the store id recorded under the prefix, "" when none is.
func (s *Store) StoreID(ctx context.Context) (string, error) {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	// GetObject sends nothing until the first read: a missing key is an
	// error of ReadAll.
	obj, err := s.client.GetObject(ctx, s.bucket, s.StoreIDKey(), minio.GetObjectOptions{})
	var b []byte
	if err == nil {
		defer obj.Close()
		b, err = io.ReadAll(io.LimitReader(obj, maxStoreIDSize))
	}
	if errors.Is(translate(err), cas.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("s3store: read store id: %w", s.late(ctx, translate(err)))
	}
	return strings.TrimSpace(string(b)), nil
}

// SetStoreID records id under the prefix, replacing any id recorded before;
// "" removes the record. One PUT: S3 makes it visible whole or not at all.
func (s *Store) SetStoreID(ctx context.Context, id string) error {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	if id == "" {
		err := s.client.RemoveObject(ctx, s.bucket, s.StoreIDKey(), minio.RemoveObjectOptions{})
		if err != nil && !errors.Is(translate(err), cas.ErrNotFound) {
			return fmt.Errorf("s3store: remove store id: %w", s.late(ctx, translate(err)))
		}
		return nil
	}
	body := []byte(id + "\n")
	_, err := s.client.PutObject(ctx, s.bucket, s.StoreIDKey(), bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain", DisableMultipart: true})
	if err != nil {
		return fmt.Errorf("s3store: write store id: %w", s.late(ctx, translate(err)))
	}
	return nil
}

package cas

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// ErrNotPresignable is returned by Store.PresignGet when the backend cannot
// hand out URLs of its own (a local directory): the caller serves the bytes
// itself.
var ErrNotPresignable = errors.New("cas: backend cannot presign")

// Presigner is implemented by backends whose bytes a client may fetch
// without the server, from a short-lived signed URL (S3). The URL names the
// bytes of h as stored; it does not say whether they are there: the caller
// checks that first. The bytes a client fetches that way are not verified
// by the server (the client has the hash to check them against). A
// non-empty contentType is the Content-Type the URL answers with.
type Presigner interface {
	PresignGet(ctx context.Context, h Hash, contentType string) (*url.URL, error)
}

// PresignGet returns a short-lived URL from which the bytes of h can be
// fetched directly, answering with contentType when it is not empty, or
// ErrNotPresignable when the backend has no such URLs.
func (s *Store) PresignGet(ctx context.Context, h Hash, contentType string) (*url.URL, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("cas: presign %s: %w", h, err)
	}
	p, ok := s.b.(Presigner)
	if !ok {
		return nil, fmt.Errorf("cas: presign %s: %w", h, ErrNotPresignable)
	}
	u, err := p.PresignGet(ctx, h, contentType)
	if err != nil {
		return nil, fmt.Errorf("cas: presign %s: %w", h, err)
	}
	return u, nil
}

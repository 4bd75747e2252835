package s3store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/cas"
)

// CleanTemp implements cas.TempCleaner: it deletes temp keys, and aborts
// unfinished multipart uploads under the prefix, older than olderThan (all
// of them when it is 0), but never an upload in progress. MinIO lists
// unfinished uploads only per key, so there only temp keys are found.
//
// In progress means two things. An upload of this process (Create until
// Commit or Cancel returns, the copy from a temporary key included) is
// never touched, whatever its age: with no grace, that is the only
// protection there can be. An upload of another process is judged by its
// activity, not its start: a multi-GB upload that began long ago but still
// sends parts is alive, so an upload is aborted only when its last part
// (from ListObjectParts), or its start when it has none, is older than the
// cutoff. Activity rather than a lease object keeps the bucket free of
// bookkeeping and needs nothing of the uploader; a process that crashed
// stops sending parts, so its uploads age out. Parts are dated by the
// server and the cutoff by the local clock: clock skew is small beside the
// grace of a real sweep (24h by default).
func (s *Store) CleanTemp(ctx context.Context, olderThan time.Duration) (int, int64, error) {
	cutoff := time.Now().Add(-olderThan)
	if olderThan == 0 {
		cutoff = time.Now().Add(time.Hour) // everything is old
	}
	var items int
	var n int64

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objects := s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + tmpDir, Recursive: true})
	var listErr error
	for obj := range objects {
		if obj.Err != nil {
			listErr = translate(obj.Err)
			break
		}
		if s.live.has(obj.Key) || !obj.LastModified.Before(cutoff) {
			continue
		}
		if err := s.remove(ctx, obj.Key); err != nil {
			listErr = fmt.Errorf("s3store: delete %s: %w", obj.Key, err)
			break
		}
		items++
		n += obj.Size
	}
	cancel()
	for range objects {
	}
	if listErr != nil {
		return items, n, listErr
	}

	uctx, ucancel := context.WithCancel(ctx)
	defer ucancel()
	uploads := s.client.ListIncompleteUploads(uctx, s.bucket, s.prefix, true)
	defer func() {
		ucancel()
		for range uploads {
		}
	}()
	for u := range uploads {
		if u.Err != nil {
			return items, n, fmt.Errorf("s3store: list unfinished uploads: %w", translate(u.Err))
		}
		if !s.ownsKey(u.Key) {
			continue
		}
		live := s.live.has(u.Key)
		if keepUpload(live, u.Initiated, time.Time{}, cutoff) {
			continue
		}
		last, err := s.lastPart(ctx, u.Key, u.UploadID)
		if err != nil {
			return items, n, fmt.Errorf("s3store: list parts of the upload of %s: %w", u.Key, err)
		}
		if keepUpload(live, u.Initiated, last, cutoff) {
			continue
		}
		// Abort this upload only: another one may be writing the same key.
		actx, acancel := s.bounded(ctx, 0)
		err = s.core.AbortMultipartUpload(actx, s.bucket, u.Key, u.UploadID)
		err = s.late(actx, err)
		acancel()
		if err != nil {
			if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
				continue
			}
			return items, n, fmt.Errorf("s3store: abort upload of %s: %w", u.Key, translate(err))
		}
		items++
		n += u.Size
	}
	return items, n, nil
}

// keepUpload says whether CleanTemp leaves an unfinished multipart upload
// alone: one of this process (live), or one whose start or last part
// (zero when it has none, or when not yet asked) is not older than cutoff.
func keepUpload(live bool, initiated, lastPart, cutoff time.Time) bool {
	return live || !initiated.Before(cutoff) || (!lastPart.IsZero() && !lastPart.Before(cutoff))
}

// lastPart returns when the newest part of an unfinished upload arrived
// (zero when none has). An upload that is gone meanwhile has no parts.
func (s *Store) lastPart(ctx context.Context, key, uploadID string) (time.Time, error) {
	var last time.Time
	marker := 0
	for range maxParts/1000 + 1 {
		pctx, cancel := s.bounded(ctx, 0)
		res, err := s.core.ListObjectParts(pctx, s.bucket, key, uploadID, marker, 1000)
		err = s.late(pctx, err)
		cancel()
		if err != nil {
			if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
				return last, nil
			}
			return last, translate(err)
		}
		for _, p := range res.ObjectParts {
			if p.LastModified.After(last) {
				last = p.LastModified
			}
		}
		if !res.IsTruncated {
			break
		}
		marker = res.NextPartNumberMarker
	}
	return last, nil
}

// remove deletes one key within the timeout.
func (s *Store) remove(ctx context.Context, key string) error {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	return s.late(ctx, translate(s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})))
}

// liveKeys counts the uploads of this process per key (two uploads may
// write the same final key). CleanTemp never touches a live key.
type liveKeys struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *liveKeys) add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = make(map[string]int)
	}
	l.n[key]++
}

func (l *liveKeys) drop(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key]--; l.n[key] <= 0 {
		delete(l.n, key)
	}
}

func (l *liveKeys) has(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[key] > 0
}

func (s *Store) ownsKey(key string) bool {
	return strings.HasPrefix(key, s.prefix+blobsDir) || strings.HasPrefix(key, s.prefix+tmpDir)
}

// IncompleteUploads counts the unfinished multipart uploads of blob h's
// key: uploads with a known hash that are in progress, or that a crash left
// behind. It works on MinIO, which lists unfinished uploads only per key.
func (s *Store) IncompleteUploads(ctx context.Context, h cas.Hash) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	key := s.Key(h)
	uploads := s.client.ListIncompleteUploads(ctx, s.bucket, key, false)
	defer func() {
		cancel()
		for range uploads {
		}
	}()
	count := 0
	for u := range uploads {
		if u.Err != nil {
			return count, translate(u.Err)
		}
		if u.Key == key {
			count++
		}
	}
	return count, nil
}

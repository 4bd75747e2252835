package s3store

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/blockstore/blockstore/cas"
)

const (
	// DefaultPresignExpiry is the life of a presigned URL when
	// Config.PresignExpiry is 0: long enough to start a download, short
	// enough that a leaked URL soon stops working.
	DefaultPresignExpiry = 5 * time.Minute
	// maxPresignExpiry is S3's limit on a signature's life.
	maxPresignExpiry = 7 * 24 * time.Hour
)

var _ cas.Presigner = (*Store)(nil)

func presignExpiry(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultPresignExpiry, nil
	case d < time.Second || d > maxPresignExpiry:
		return 0, fmt.Errorf("presign expiry %s is outside [1s, 168h]", d)
	}
	return d, nil
}

// PresignGet implements cas.Presigner: a URL signed with the store's
// credentials that GETs the object of h (Range included) for the
// configured expiry, answering with contentType when it is given. Signing
// is local, but the first call may ask the bucket for its region, within
// the timeout.
func (s *Store) PresignGet(ctx context.Context, h cas.Hash, contentType string) (*url.URL, error) {
	ctx, cancel := s.bounded(ctx, 0)
	defer cancel()
	var params url.Values
	if contentType != "" {
		params = url.Values{"response-content-type": {contentType}}
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, s.Key(h), s.presignExpiry, params)
	if err != nil {
		return nil, s.late(ctx, translate(err))
	}
	return u, nil
}

package s3store_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/internal/testenv"
)

func TestCorruption(t *testing.T) {
	castest.RunCorruption(t, func(t *testing.T) cas.Backend { return open(t) }, corrupt)
}

// corrupt rewrites the object of h, one byte changed, with a client of its
// own: what a disk fault under the bucket or a stray writer would leave.
func corrupt(t *testing.T, b cas.Backend, h cas.Hash, at int64) {
	t.Helper()
	ctx := context.Background()
	s := b.(*s3store.Store)
	srv := testenv.MinIO(t)
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, s.Bucket(), s.Key(h), minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	data = castest.FlipByte(data, at)
	if _, err := c.PutObject(ctx, s.Bucket(), s.Key(h), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

package faults

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/internal/app"
	"github.com/blockstore/blockstore/internal/testenv"
)

// deployment is where a server keeps its state: the flags and environment
// of `blockstore serve` and of the commands that open the same stores.
type deployment struct {
	name string
	args []string // store flags, without secrets
	env  []string // secrets, as BLOCKSTORE_… variables

	dataDir string // embedded: the data directory

	// production
	databaseURL string
	s3          *testenv.S3Server
	s3Endpoint  string // the endpoint the server uses (a proxy, maybe)
	bucket      string
}

// embeddedDeployment is a fresh data directory.
func embeddedDeployment(t *testing.T) deployment {
	dir := filepath.Join(t.TempDir(), "data")
	return deployment{name: "embedded", args: []string{"--data", dir}, dataDir: dir}
}

// productionDeployment is a fresh PostgreSQL database and a fresh bucket on
// the package's MinIO server.
func productionDeployment(t *testing.T) deployment {
	t.Helper()
	return productionVia(t, testenv.NewDatabase(t), "")
}

// productionVia is a production deployment over databaseURL and a fresh
// bucket, reaching MinIO through s3Endpoint ("" for MinIO itself).
func productionVia(t *testing.T, databaseURL, s3Endpoint string) deployment {
	t.Helper()
	s3 := testenv.MinIO(t)
	if s3Endpoint == "" {
		s3Endpoint = s3.Endpoint
	}
	d := deployment{
		name:        "postgres+s3",
		databaseURL: databaseURL,
		s3:          s3,
		s3Endpoint:  s3Endpoint,
		bucket:      "faults-" + randomHex(6),
	}
	d.args = []string{
		"--s3-endpoint", s3Endpoint, "--s3-bucket", d.bucket, "--s3-access-key", s3.AccessKey,
		"--s3-insecure", "--s3-create-bucket",
	}
	d.env = []string{"BLOCKSTORE_DATABASE_URL=" + databaseURL, "BLOCKSTORE_S3_SECRET_KEY=" + s3.SecretKey}
	return d
}

func (d deployment) production() bool { return d.databaseURL != "" }

// config is the app.Config of the same stores, reaching MinIO directly.
func (d deployment) config() app.Config {
	if !d.production() {
		return app.Config{DataDir: d.dataDir}
	}
	return app.Config{
		DatabaseURL: d.databaseURL,
		S3: s3store.Config{
			Endpoint: d.s3.Endpoint, Bucket: d.bucket, AccessKey: d.s3.AccessKey, SecretKey: d.s3.SecretKey,
			Insecure: true, CreateBucket: true,
		},
	}
}

// minioClient talks to the deployment's MinIO directly (not through a
// proxy), to look at what the bucket holds.
func (d deployment) minioClient(t *testing.T) *minio.Client {
	t.Helper()
	c, err := minio.New(d.s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(d.s3.AccessKey, d.s3.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// objects lists the keys of the bucket under prefix.
func (d deployment) objects(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	for obj := range d.minioClient(t).ListObjects(context.Background(), d.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list %s/%s: %v", d.bucket, prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return keys
}

// withHost returns the PostgreSQL URL u with its host:port replaced by
// hostport and the query parameters in params added.
func withHost(t *testing.T, u, hostport string, params map[string]string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Host = hostport
	q := p.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	p.RawQuery = q.Encode()
	return p.String()
}

package app

import (
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/index"
)

// stats is what GET /api/v1/stats reports beyond the API's own figures:
// the deployment's names, each store's ping and the index's totals.
func (a *App) stats() httpapi.Stats {
	st := httpapi.Stats{Deployment: a.Config.deployment()}
	if a.Index != nil {
		st.PingIndex = a.Index.Ping
		st.Index = indexStats(a.Index)
	}
	if a.Blobs != nil {
		st.PingBlobs = a.Blobs.Ping
	}
	return st
}

// indexStats finds the optional index.Stats of the engine under the
// metrics wrapper (which forwards only index.Store's methods); nil when the
// engine has none.
func indexStats(idx index.Store) index.Stats {
	if m, ok := idx.(*meteredIndex); ok {
		idx = m.Store
	}
	st, _ := idx.(index.Stats)
	return st
}

// deployment names the stores of c without secrets: for PostgreSQL the
// host, port and database only (never the URL, which may hold a password);
// for S3 the endpoint's host, the bucket and the prefix (never the keys).
func (c Config) deployment() httpapi.Deployment {
	d := httpapi.Deployment{
		Index:         "pebble",
		IndexLocation: filepath.Join(c.DataDir, "index"),
		Blobs:         "directory",
		BlobsLocation: filepath.Join(c.DataDir, "blobs"),
	}
	if c.DatabaseURL != "" {
		d.Index, d.IndexLocation = "postgresql", databaseLocation(c.DatabaseURL)
	}
	if c.S3.Endpoint != "" {
		d.Blobs, d.BlobsLocation = "s3", s3Location(c.S3.Endpoint, c.S3.Bucket, c.S3.Prefix)
	}
	switch {
	case c.DatabaseURL != "" && c.S3.Endpoint != "":
		d.Kind = "production"
	case c.DatabaseURL == "" && c.S3.Endpoint == "":
		d.Kind = "embedded"
	default:
		d.Kind = "mixed"
	}
	return d
}

func databaseLocation(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "" // Open parsed it; nothing of it is worth showing otherwise
	}
	return cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) + "/" + cfg.Database
}

func s3Location(endpoint, bucket, prefix string) string {
	host := endpoint
	if strings.Contains(endpoint, "://") {
		if u, err := url.Parse(endpoint); err == nil {
			host = u.Host // drops any user information
		} else {
			host = ""
		}
	}
	return host + "/" + bucket + "/" + prefix
}

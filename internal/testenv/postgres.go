package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDatabaseURL is the server this kind of machine runs (trust auth).
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// DatabaseURL is the administrative URL tests use: BLOCKSTORE_TEST_DATABASE_URL,
// else DefaultDatabaseURL.
func DatabaseURL() string {
	if u := os.Getenv("BLOCKSTORE_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

var (
	pgOnce sync.Once
	pgErr  error
)

// connectAdmin connects to the administrative database, starting the local
// cluster once when it is installed but stopped.
func connectAdmin(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, DatabaseURL())
	if err == nil {
		return conn, nil
	}
	pgOnce.Do(func() { pgErr = startLocalCluster() })
	if pgErr != nil {
		return nil, fmt.Errorf("connect: %w (and starting a local cluster: %v)", redact(err), pgErr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err = pgx.Connect(ctx, DatabaseURL())
		if err == nil || time.Now().After(deadline) {
			return conn, redact(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startLocalCluster starts the Debian cluster when pg_ctlcluster exists.
func startLocalCluster() error {
	if os.Getenv("BLOCKSTORE_TEST_DATABASE_URL") != "" {
		return fmt.Errorf("BLOCKSTORE_TEST_DATABASE_URL is set: not starting a local cluster")
	}
	bin, err := exec.LookPath("pg_ctlcluster")
	if err != nil {
		return fmt.Errorf("pg_ctlcluster not installed")
	}
	versions, _ := filepath.Glob("/etc/postgresql/*")
	if len(versions) == 0 {
		return fmt.Errorf("no cluster under /etc/postgresql")
	}
	out, err := exec.Command(bin, "--skip-systemctl-redirect", filepath.Base(versions[len(versions)-1]), "main", "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctlcluster start: %v: %s", err, out)
	}
	return nil
}

// redact removes a password from an error that may quote a connection string.
func redact(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s", RedactURL(err.Error()))
}

// RedactURL hides the password of any postgres URL in s.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return s
}

// NewDatabase creates an empty database for tb and returns its URL. The
// database is dropped when tb ends. When PostgreSQL cannot be reached, tb is
// skipped (failed under CI).
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	u, drop, err := CreateDatabase(context.Background(), "t")
	if err != nil {
		Unavailable(tb, "PostgreSQL at "+RedactURL(DatabaseURL()), err)
	}
	tb.Cleanup(drop)
	return u
}

// CreateDatabase creates an empty database named prefix_<random> and returns
// its URL and a function that drops it (benchmarks and TestMain use it).
func CreateDatabase(ctx context.Context, prefix string) (string, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, err := connectAdmin(ctx)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(context.Background())
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "blockstore_" + prefix + "_" + hex.EncodeToString(rnd[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(DatabaseURL())
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c, err := connectAdmin(ctx)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/blockstore/blockstore/internal/app"
	"github.com/blockstore/blockstore/internal/backup"
)

// maxErrorBody bounds how much of a refusal the backup command reads.
const maxErrorBody = 64 << 10

// runBackup writes a backup of an embedded deployment into DIR: through a
// running server (--server, POST /api/v1/backup), or on the stores directly
// when no server holds the data directory. The format is documented in
// package backup.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", "backup DIR [--server URL [--token TOKEN] | --data DATA] [--json]\n\n"+
		"Writes a consistent backup of an embedded deployment into DIR (absent or empty): a checkpoint\n"+
		"of the index and every blob it needs, then DIR/MANIFEST.json, written last. Through --server the\n"+
		"server keeps serving; without it the data directory must not be in use. PostgreSQL deployments\n"+
		"are backed up with pg_dump and the bucket's own tools (see the README).")
	sf := addStoreFlags(fs)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the manifest as JSON")
	dirArg, err := parseWithDir(fs, args, stderr)
	if err != nil {
		return err
	}
	if *cf.server != "" {
		// Checks the URL before anything is created.
		if _, err := cf.client(); err != nil {
			return usageError{err}
		}
	}
	bd, err := backup.CreateDir(dirArg)
	if err != nil {
		return err
	}
	start := time.Now()
	var m backup.Manifest
	if *cf.server != "" {
		m, err = backupThroughServer(ctx, *cf.server, *cf.token, bd)
	} else {
		m, err = backupStores(ctx, sf.config(), bd)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, m)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "backup\t%s\t\n", dirArg)
	fmt.Fprintf(tw, "index\t%d files\t%s\n", len(m.IndexFiles), humanize.IBytes(uint64(m.IndexBytes())))
	fmt.Fprintf(tw, "blobs\t%d\t%s\n", m.Blobs, humanize.IBytes(uint64(m.BlobBytes)))
	fmt.Fprintf(tw, "took\t%.1fs\t\n", time.Since(start).Seconds())
	return tw.Flush()
}

// backupThroughServer asks the server for the backup stream and writes it
// into bd.
func backupThroughServer(ctx context.Context, server, token string, bd *backup.Dir) (backup.Manifest, error) {
	url := strings.TrimSuffix(server, "/") + "/api/v1/backup"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		bd.Discard()
		return backup.Manifest{}, usageError{fmt.Errorf("--server: %w", err)}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// No overall timeout: a backup may take hours; the context ends it.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		bd.Discard()
		return backup.Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		bd.Discard()
		return backup.Manifest{}, fmt.Errorf("backup: the server refused: %s", refusal(resp))
	}
	return bd.Receive(ctx, resp.Body)
}

// refusal describes an error answer of the API.
func refusal(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
		return fmt.Sprintf("%d %s: %s", resp.StatusCode, env.Error.Code, env.Error.Message)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

// backupStores opens the stores of cfg (refused while a server holds the
// data directory) and writes their backup into bd.
func backupStores(ctx context.Context, cfg app.Config, bd *backup.Dir) (backup.Manifest, error) {
	a, err := app.Open(ctx, cfg)
	if err != nil {
		bd.Discard()
		return backup.Manifest{}, err
	}
	defer a.Close()
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		_, err := a.Backup.Write(ctx, pw)
		pw.CloseWithError(err)
		sent <- err
	}()
	m, err := bd.Receive(ctx, pr)
	pr.CloseWithError(errReceiverGone) // a Backup still writing stops
	serr := <-sent
	if err != nil && serr != nil && !errors.Is(serr, errReceiverGone) {
		// The sender failed first: its reason, rather than that the stream
		// broke off.
		return backup.Manifest{}, serr
	}
	return m, err
}

// errReceiverGone stops a local backup stream whose receiver has failed.
var errReceiverGone = errors.New("the backup directory stopped receiving")

// runRestore brings a backup back into an empty data directory.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "restore DIR --data DATA [--s3-… flags] [--jobs N] [--json]\n\n"+
		"Brings the backup in DIR back into the data directory DATA, which must be absent or empty:\n"+
		"the index into DATA/index, the blobs into DATA/blobs (or into the bucket the --s3-… flags name),\n"+
		"each verified. A backup without its MANIFEST.json (interrupted) is refused. Run\n"+
		"'blockstore verify --data DATA' afterwards to check the result at rest.")
	sf := addStoreFlags(fs)
	jobs := fs.Int("jobs", 4, "blobs restored at once")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	dirArg, err := parseWithDir(fs, args, stderr)
	if err != nil {
		return err
	}
	if *jobs < 1 {
		return usageError{fmt.Errorf("--jobs %d: want at least 1", *jobs)}
	}
	cfg := sf.config()
	if cfg.DatabaseURL != "" {
		return usageError{fmt.Errorf("a backup holds an embedded index: drop --database-url (restore PostgreSQL with pg_restore; see the README)")}
	}
	start := time.Now()
	rep, err := app.Restore(ctx, dirArg, cfg, *jobs)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "restored\t%s\tinto %s\n", dirArg, cfg.Describe())
	fmt.Fprintf(tw, "index\t%d files\t%s\n", rep.IndexFiles, humanize.IBytes(uint64(rep.IndexBytes)))
	fmt.Fprintf(tw, "blobs\t%d\t%s\n", rep.Blobs, humanize.IBytes(uint64(rep.BlobBytes)))
	fmt.Fprintf(tw, "took\t%.1fs\t\n", time.Since(start).Seconds())
	return tw.Flush()
}

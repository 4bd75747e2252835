package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// Backup is what the API needs of the backups of the embedded deployment.
type Backup interface {
	// WriteBackup writes a backup stream to w. It fails with an error
	// wrapping errors.ErrUnsupported on a deployment it cannot back up
	// (400) and gc.ErrRunning while a sweep or another backup runs (409).
	WriteBackup(ctx context.Context, w io.Writer) error
}

// backupBuffer is how many bytes of the stream are buffered between the
// tar writer and the connection.
const backupBuffer = 256 << 10

// postBackup answers POST /api/v1/backup with the backup stream (a POST, so
// that only the write token may take a backup: it holds the sweep lock while
// it runs). An error before the first byte is sent gets the API's JSON
// error; after it, the connection is closed without the manifest, and the
// log says why.
func (a *api) postBackup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if a.opt.Backup == nil {
		return fmt.Errorf("%w: this server takes no backups", errors.ErrUnsupported)
	}
	sw := &streamStart{w: w}
	bw := bufio.NewWriterSize(sw, backupBuffer)
	err := a.opt.Backup.WriteBackup(r.Context(), bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil || !sw.started {
		return err
	}
	a.log.Error("backup failed: closing the stream without its manifest", "error", err.Error())
	if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
		conn.Close()
	}
	// Where the connection cannot be taken (HTTP/2) the response just ends:
	// the missing manifest still tells.
	return nil
}

// streamStart sends the headers of a 200 tar stream before its first byte,
// so that a backup refused before it wrote anything can still be answered
// with an error.
type streamStart struct {
	w       http.ResponseWriter
	started bool
}

func (s *streamStart) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/x-tar")
		s.w.Header().Set("Cache-Control", "no-store")
		s.w.WriteHeader(http.StatusOK)
	}
	return s.w.Write(p)
}

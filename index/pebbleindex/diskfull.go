package pebbleindex

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// openHeadroom is the free space Open wants beyond the write-ahead logs it
// will replay: a new manifest, a new log and the OPTIONS file.
const openHeadroom = 1 << 20

// checkRoomToOpen refuses to open the database in dir when its filesystem
// lacks the room Pebble needs to start: Open replays the write-ahead logs
// into a table, and on a full disk Pebble retries that flush without end
// (it neither returns nor lets the process stop on SIGTERM), and one of its
// retries may record a table that was never written. Refusing first keeps
// the database as it was, and the error says what to do. The error matches
// syscall.ENOSPC.
func checkRoomToOpen(dir string) error {
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			return nil // nothing to measure: Open says what is wrong
		}
		probe = parent
	}
	var st unix.Statfs_t
	if err := unix.Statfs(probe, &st); err != nil {
		return nil // not measurable here: let Pebble try
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	need := int64(openHeadroom)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("index: read %s: %w", dir, err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		if info, err := e.Info(); err == nil {
			need += info.Size()
		}
	}
	if free < need {
		return fmt.Errorf("index: the disk holding %s is full (%d bytes free, %d needed to open the index): free space and start again: %w",
			dir, free, need, syscall.ENOSPC)
	}
	return nil
}

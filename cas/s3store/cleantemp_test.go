package s3store

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
)

// TestCleanTempSparesUploadsInProgress: an upload that is still streaming
// (its multipart upload begun, its bytes not all sent) survives CleanTemp
// with no grace at all, and commits whole afterwards; with a known hash
// (the final key) and without (a temporary key).
func TestCleanTempSparesUploadsInProgress(t *testing.T) {
	ctx := context.Background()
	_, b := openTest(t)
	c := castest.NewContent(7, 24<<20)
	data, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	h := cas.Sum(data)
	for _, known := range []*cas.Hash{nil, &h} {
		w, err := b.Create(ctx, cas.CreateOptions{Known: known, Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		// More than SmallBlobSize: the multipart upload has begun and
		// waits for the rest of its bytes.
		half := len(data) / 2
		if _, err := w.Write(data[:half]); err != nil {
			t.Fatal(err)
		}
		if n, _, err := b.CleanTemp(ctx, 0); err != nil {
			t.Fatalf("CleanTemp: %v", err)
		} else if n != 0 {
			t.Errorf("known hash %v: CleanTemp removed %d items while an upload streamed", known != nil, n)
		}
		if _, err := w.Write(data[half:]); err != nil {
			t.Fatalf("known hash %v: write after CleanTemp: %v", known != nil, err)
		}
		if err := w.Commit(ctx, h, int64(len(data))); err != nil {
			t.Fatalf("known hash %v: commit after CleanTemp: %v", known != nil, err)
		}
		r, err := b.Open(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("known hash %v: read back %d bytes, %v", known != nil, len(got), err)
		}
		if err := b.Delete(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCleanTempSparesACommitInProgress: between the end of a streamed
// upload to a temporary key and its copy to the final key, the temporary
// object exists; a CleanTemp with no grace at that moment leaves it alone.
func TestCleanTempSparesACommitInProgress(t *testing.T) {
	ctx := context.Background()
	_, b := openTest(t)
	data, err := io.ReadAll(castest.NewContent(8, 6<<20))
	if err != nil {
		t.Fatal(err)
	}
	h := cas.Sum(data)
	var removed int
	var cleanErr error
	b.beforeMove = func() { removed, _, cleanErr = b.CleanTemp(ctx, 0) }
	w, err := b.Create(ctx, cas.CreateOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, h, int64(len(data))); err != nil {
		t.Fatalf("commit with a CleanTemp before its copy: %v", err)
	}
	if cleanErr != nil || removed != 0 {
		t.Errorf("CleanTemp during the commit removed %d items (%v), want none", removed, cleanErr)
	}
	// Once the commit has ended, the temporary key is gone.
	if n, _, err := b.CleanTemp(ctx, 0); err != nil || n != 0 {
		t.Errorf("CleanTemp after the commit: %d, %v; want nothing left", n, err)
	}
}

// TestKeepUpload: an unfinished multipart upload is aborted only when no
// upload of this process writes its key and both its start and its last
// part are older than the cutoff.
func TestKeepUpload(t *testing.T) {
	now := time.Now()
	cutoff := now.Add(-time.Hour)
	old, young := now.Add(-2*time.Hour), now.Add(-time.Minute)
	for _, c := range []struct {
		live              bool
		initiated, lastPt time.Time
		keep              bool
	}{
		{false, old, time.Time{}, false},
		{false, old, old, false},
		{false, old, young, true}, // parts still arrive: another process streams it
		{false, young, time.Time{}, true},
		{true, old, old, true}, // this process streams it
	} {
		if got := keepUpload(c.live, c.initiated, c.lastPt, cutoff); got != c.keep {
			t.Errorf("keepUpload(%v, %v, %v) = %v, want %v", c.live, c.initiated, c.lastPt, got, c.keep)
		}
	}
}

package importer

import (
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/google/uuid"
)

// maxReported bounds the error and warning messages a summary keeps.
const maxReported = 100

// Summary is what an import did. It is JSON-tagged for --json.
type Summary struct {
	Collection        uuid.UUID `json:"collection"`
	CollectionCreated bool      `json:"collection_created"`
	Layout            Layout    `json:"layout"`
	// Files and Bytes: the regular files of the tree and their bytes.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// Units and Assets: how many files are units and how many assets.
	Units  int64 `json:"units"`
	Assets int64 `json:"assets"`
	// Links: the links of the units committed (created, versioned or
	// unchanged).
	Links int64 `json:"links"`
	// BlobsUploaded and BytesUploaded: the blobs the server lacked, which
	// this run sent (a unit's OLX counts when its blob was missing).
	BlobsUploaded int64 `json:"blobs_uploaded"`
	BytesUploaded int64 `json:"bytes_uploaded"`
	// BytesImported: the bytes of the files imported (their entity
	// created, versioned or unchanged); files that failed, or that a
	// stopped run never reached, are not in it.
	BytesImported int64 `json:"bytes_imported"`
	// BytesDeduplicated: BytesImported that were not sent because the
	// server already had them or the tree held them twice; DedupRatio is
	// their share of BytesImported (0 when nothing was imported).
	BytesDeduplicated int64   `json:"bytes_deduplicated"`
	DedupRatio        float64 `json:"dedup_ratio"`
	// EntitiesCreated: new units and assets; VersionsAdded: new versions of
	// existing ones; Unchanged: files whose entity already had these bytes
	// (and links).
	EntitiesCreated int64 `json:"entities_created"`
	VersionsAdded   int64 `json:"versions_added"`
	Unchanged       int64 `json:"unchanged"`
	// Failed: files that were not imported (see Errors).
	Failed int64 `json:"failed"`
	// Errors: the first messages about failed files; Skipped: paths not
	// imported on purpose (symbolic links to directories, sockets…);
	// Warnings: other remarks (an OLX file imported as an asset).
	Errors   []string `json:"errors,omitempty"`
	Skipped  []string `json:"skipped,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Seconds is the wall time; BytesPerSecond is Bytes over it.
	Seconds        float64 `json:"seconds"`
	BytesPerSecond float64 `json:"bytes_per_second"`
}

// countDedup fills BytesImported, BytesDeduplicated and DedupRatio from
// the nodes of a finished run. A node is imported when it is done without
// an error. Its bytes were sent when its blob was uploaded by this run
// (counted once per blob, however many imported files hold it); the rest
// were deduplicated. A blob sent for a file that then failed is in
// BytesUploaded but saved nothing, so it is not subtracted here.
func (s *Summary) countDedup(nodes []*node) {
	var imported, sent int64
	seen := make(map[*blobState]bool)
	for _, n := range nodes {
		if !n.done || n.err != nil {
			continue
		}
		imported += n.size
		if bs := n.blob; bs != nil && bs.counted.Load() && !seen[bs] {
			seen[bs] = true
			sent += bs.size
		}
	}
	s.BytesImported = imported
	s.BytesDeduplicated = max(0, imported-sent)
	s.DedupRatio = 0
	if imported > 0 {
		s.DedupRatio = float64(s.BytesDeduplicated) / float64(imported)
	}
}

// Duration is Seconds as a time.Duration.
func (s Summary) Duration() time.Duration { return time.Duration(s.Seconds * float64(time.Second)) }

// WriteText writes the summary for people.
func (s Summary) WriteText(w io.Writer) error {
	created := ""
	if s.CollectionCreated {
		created = " (created)"
	}
	_, err := fmt.Fprintf(w, `collection    %s%s
layout        %s
files         %d (%d units, %d assets, %d links), %s
uploaded      %s in %d blobs
deduplicated  %s (%.1f%%)
entities      %d created, %d new versions, %d unchanged, %d failed
time          %s, %s/s
`,
		s.Collection, created, s.Layout,
		s.Files, s.Units, s.Assets, s.Links, humanize.IBytes(uint64(s.Bytes)),
		humanize.IBytes(uint64(s.BytesUploaded)), s.BlobsUploaded,
		humanize.IBytes(uint64(s.BytesDeduplicated)), 100*s.DedupRatio,
		s.EntitiesCreated, s.VersionsAdded, s.Unchanged, s.Failed,
		s.Duration().Round(time.Millisecond), humanize.IBytes(uint64(s.BytesPerSecond)))
	if err != nil {
		return err
	}
	for _, group := range []struct {
		title string
		lines []string
	}{{"skipped", s.Skipped}, {"warning", s.Warnings}, {"error", s.Errors}} {
		for _, l := range group.lines {
			if _, err := fmt.Fprintf(w, "%-13s %s\n", group.title, l); err != nil {
				return err
			}
		}
	}
	return nil
}

// ExportSummary is what an export did. It is JSON-tagged for --json.
type ExportSummary struct {
	Collection uuid.UUID `json:"collection"`
	// Files and Bytes: the files the collection's entities give.
	Files  int64 `json:"files"`
	Bytes  int64 `json:"bytes"`
	Units  int64 `json:"units"`
	Assets int64 `json:"assets"`
	// Written: files written; Unchanged: files already there with the same
	// bytes, left alone.
	Written   int64 `json:"written"`
	Unchanged int64 `json:"unchanged"`
	Failed    int64 `json:"failed"`
	// Skipped: entities without a name (they have no path).
	Skipped        []string `json:"skipped,omitempty"`
	Errors         []string `json:"errors,omitempty"`
	Seconds        float64  `json:"seconds"`
	BytesPerSecond float64  `json:"bytes_per_second"`
}

// WriteText writes the summary for people.
func (s ExportSummary) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, `collection    %s
files         %d (%d units, %d assets), %s
written       %d, %d unchanged, %d failed
time          %s, %s/s
`,
		s.Collection, s.Files, s.Units, s.Assets, humanize.IBytes(uint64(s.Bytes)),
		s.Written, s.Unchanged, s.Failed,
		(time.Duration(s.Seconds * float64(time.Second))).Round(time.Millisecond), humanize.IBytes(uint64(s.BytesPerSecond)))
	if err != nil {
		return err
	}
	for _, l := range s.Skipped {
		if _, err := fmt.Fprintf(w, "skipped       %s\n", l); err != nil {
			return err
		}
	}
	for _, l := range s.Errors {
		if _, err := fmt.Fprintf(w, "error         %s\n", l); err != nil {
			return err
		}
	}
	return nil
}

package gc

import (
	"context"
	"fmt"

	"github.com/dustin/go-humanize"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Phase 4: mark. The plan joins three streams sorted by hash — the
// registry's rows, the hashes stored versions reference, and the blob
// store's contents (walked in no order, so sorted through temporary files
// first) — and writes the candidates to a file. Memory stays constant.

func (s *sweep) runMark(ctx context.Context) (int64, int64, error) {
	// The walk comes first: bytes it sees were registered (BeginBlob) before
	// they were written, so the registry stream that follows has their row
	// unless a sweep forgot it, which makes them strays.
	sorter := newStoredSorter(s.c.opt.TempDir, s.c.runLen)
	defer sorter.close()
	var walked int64
	err := s.c.blobs.Walk(ctx, func(in cas.Info) error {
		walked++
		s.progress(ctx, walked)
		return sorter.add(in)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("walk the blob store: %w", err)
	}
	stored, err := sorter.sorted()
	if err != nil {
		return 0, 0, err
	}

	var last cas.Hash
	refs, err := s.spoolOf(ctx, cas.HashSize, func(emit func([]byte) error) error {
		first := true
		return s.c.idx.ReferencedHashes(ctx, func(h cas.Hash) error {
			if !first {
				if h == last {
					return nil
				}
				if less(h, last) {
					return fmt.Errorf("referenced hashes out of order: %s after %s", h, last)
				}
			}
			first, last = false, h
			return emit(h[:])
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list referenced hashes: %w", err)
	}
	defer refs.close()
	refsReader, err := refs.all()
	if err != nil {
		return 0, 0, err
	}

	cand, err := newSpool(s.c.opt.TempDir, candidateRecSize)
	if err != nil {
		return 0, 0, err
	}
	s.candidates = cand
	rec := make([]byte, candidateRecSize)
	p := &blobPlanner{
		refs:   spoolHashes{refsReader},
		stored: stored,
		cutoff: s.c.now().Add(-s.grace),
		emit: func(h cas.Hash, size int64) error {
			encodeCandidate(rec, h, size)
			return cand.append(rec)
		},
	}
	var rows int64
	err = s.c.idx.Blobs(ctx, func(b index.Blob) error {
		rows++
		s.progress(ctx, rows)
		return p.row(b)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("join the registry with references and the blob store: %w", err)
	}
	if err := p.finish(); err != nil {
		return 0, 0, err
	}
	s.plan = p.stats
	s.report.BlobsKept = p.stats.kept()
	if p.anomaly > 0 {
		s.note("%d referenced blobs are in the blob store without a registry row; kept (run verify)", p.anomaly)
	}
	if s.dry && (s.report.VersionsDeleted > 0 || s.report.AssetsDeleted > 0) {
		// Counting them exactly would take a reference count per hash,
		// which the engines do not keep; the plan only reads the index.
		s.note("dry run: blobs named only by the versions and assets this sweep would delete are not counted; a real sweep frees them too")
	}
	if err := s.guard(); err != nil {
		return p.stats.Candidates, p.stats.CandidateBytes, err
	}
	return p.stats.Candidates, p.stats.CandidateBytes, nil
}

// guard stops a plan that would delete more than MaxDeleteShare of the
// stored blobs or of their bytes, unless the request says Force: a plan
// that large more often means lost references (a restored index, a wrong
// database) than garbage. A dry run only notes it. Blobs that the resume
// phase finished are not counted: their deletion was decided before.
func (s *sweep) guard() error {
	max := s.c.opt.MaxDeleteShare
	st := s.plan
	blobs, bytes := st.Candidates+st.kept(), st.CandidateBytes+st.KeptBytes
	blobShare := share(st.Candidates, blobs)
	byteShare := share(st.CandidateBytes, bytes)
	if blobShare <= max && byteShare <= max {
		return nil
	}
	what := fmt.Sprintf("the plan deletes %d of %d blobs (%.0f%%) and %s of %s (%.0f%%), more than the limit of %.0f%%",
		st.Candidates, blobs, 100*blobShare,
		humanize.IBytes(uint64(st.CandidateBytes)), humanize.IBytes(uint64(bytes)), 100*byteShare, 100*max)
	switch {
	case s.force:
		s.note("%s; deleting anyway (forced)", what)
		return nil
	case s.dry:
		s.note("%s: a real sweep would stop before deleting any blob unless forced (--gc-allow-mass-delete, \"force\": true)", what)
		return nil
	}
	s.note("%s: stopped before deleting any blob; check that the index is the right one, then run again with --gc-allow-mass-delete (\"force\": true) if this is intended", what)
	return fmt.Errorf("%w: %s", ErrMassDelete, what)
}

func share(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

package gc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// hashIter yields hashes in ascending order.
type hashIter interface {
	next() (cas.Hash, bool, error)
}

// spoolHashes reads a spool of hashes (written in ascending order).
type spoolHashes struct{ r *spoolReader }

func (s spoolHashes) next() (cas.Hash, bool, error) {
	rec, ok, err := s.r.next()
	if !ok || err != nil {
		return cas.Hash{}, false, err
	}
	return cas.Hash(rec), true, nil
}

// A candidate is a blob the plan would delete: its hash and the bytes it
// holds (from the registry, else from the blob store; 0 when neither knows).
const candidateRecSize = cas.HashSize + 8

func encodeCandidate(b []byte, h cas.Hash, size int64) {
	copy(b, h[:])
	binary.BigEndian.PutUint64(b[cas.HashSize:], uint64(size))
}

func decodeCandidate(b []byte) (cas.Hash, int64) {
	return cas.Hash(b[:cas.HashSize]), int64(binary.BigEndian.Uint64(b[cas.HashSize:]))
}

// planStats counts what the blob plan found.
type planStats struct {
	Candidates     int64 // blobs the plan would delete (strays included)
	CandidateBytes int64
	Strays         int64 // of the candidates, bytes in the blob store without a registry row
	Referenced     int64 // kept: a stored version names them
	Leased         int64 // kept: lease renewed within the grace (pending or live)
	Young          int64 // kept: stray bytes written within the grace
	KeptBytes      int64 // the bytes of the kept blobs (as far as known)
}

func (p planStats) kept() int64 { return p.Referenced + p.Leased + p.Young }

// blobPlanner classifies every blob in one pass, in ascending hash order,
// over three sorted sources: the registry rows (pushed to row, as the index
// streams them), the referenced hashes and the bytes found in the blob store
// (both pulled). It holds one element of each source at a time: memory does
// not grow with the number of blobs.
type blobPlanner struct {
	refs   hashIter
	stored storedIter
	// cutoff is now minus the grace: leases renewed and strays written at or
	// after it are kept.
	cutoff time.Time
	// emit receives each candidate with its size.
	emit func(h cas.Hash, size int64) error

	refHead  cas.Hash
	refValid bool // refHead holds the next referenced hash
	refEnd   bool
	stHead   cas.Info
	stValid  bool
	stEnd    bool
	lastRow  cas.Hash
	anyRow   bool
	stats    planStats
	anomaly  int64 // referenced hashes with no registry row (see Report.Notes)
	lastQ    cas.Hash
	anyQuery bool
}

func less(a, b cas.Hash) bool { return bytes.Compare(a[:], b[:]) < 0 }

// referenced reports whether h is among the referenced hashes. Successive
// calls must ask ascending hashes.
func (p *blobPlanner) referenced(h cas.Hash) (bool, error) {
	if p.anyQuery && !less(p.lastQ, h) {
		return false, fmt.Errorf("gc: plan asked hash %s after %s", h, p.lastQ)
	}
	p.lastQ, p.anyQuery = h, true
	for !p.refEnd {
		if !p.refValid {
			next, ok, err := p.refs.next()
			if err != nil {
				return false, err
			}
			if !ok {
				p.refEnd = true
				break
			}
			p.refHead, p.refValid = next, true
		}
		if less(p.refHead, h) {
			p.refValid = false
			continue
		}
		break
	}
	return !p.refEnd && p.refHead == h, nil
}

// peekStored returns the next stored blob without consuming it.
func (p *blobPlanner) peekStored() (cas.Info, bool, error) {
	if p.stValid {
		return p.stHead, true, nil
	}
	if p.stEnd {
		return cas.Info{}, false, nil
	}
	in, ok, err := p.stored.next()
	if err != nil {
		return cas.Info{}, false, err
	}
	if !ok {
		p.stEnd = true
		return cas.Info{}, false, nil
	}
	p.stHead, p.stValid = in, true
	return in, true, nil
}

// strays classifies every stored blob below limit (all of them when limit
// is nil): bytes in the blob store that the registry has no row for.
func (p *blobPlanner) strays(limit *cas.Hash) error {
	for {
		in, ok, err := p.peekStored()
		if err != nil {
			return err
		}
		if !ok || (limit != nil && !less(in.Hash, *limit)) {
			return nil
		}
		p.stValid = false
		ref, err := p.referenced(in.Hash)
		if err != nil {
			return err
		}
		switch {
		case ref:
			// A version names bytes the registry does not know: keep them;
			// `verify` reports the missing row.
			p.stats.Referenced++
			p.stats.KeptBytes += max(in.Size, 0)
			p.anomaly++
		case !in.ModTime.IsZero() && !in.ModTime.Before(p.cutoff):
			p.stats.Young++
			p.stats.KeptBytes += max(in.Size, 0)
		default:
			p.stats.Candidates++
			p.stats.Strays++
			p.stats.CandidateBytes += max(in.Size, 0)
			if err := p.emit(in.Hash, max(in.Size, 0)); err != nil {
				return err
			}
		}
	}
}

// row classifies one registry row; rows must come in ascending hash order.
func (p *blobPlanner) row(b index.Blob) error {
	if p.anyRow && !less(p.lastRow, b.Hash) {
		return fmt.Errorf("gc: registry stream out of order: %s after %s", b.Hash, p.lastRow)
	}
	p.lastRow, p.anyRow = b.Hash, true
	if err := p.strays(&b.Hash); err != nil {
		return err
	}
	storedSize := int64(-1)
	if in, ok, err := p.peekStored(); err != nil {
		return err
	} else if ok && in.Hash == b.Hash {
		storedSize = in.Size
		p.stValid = false
	}
	if b.State == index.BlobDeleting {
		// A dead sweep's claim: the resume phase has handled (or counted) it.
		return nil
	}
	ref, err := p.referenced(b.Hash)
	if err != nil {
		return err
	}
	size := b.Size
	if size < 0 {
		size = storedSize
	}
	size = max(size, 0)
	switch {
	case ref:
		p.stats.Referenced++
		p.stats.KeptBytes += size
	case !b.LeasedAt.Before(p.cutoff):
		p.stats.Leased++
		p.stats.KeptBytes += size
	default:
		p.stats.Candidates++
		p.stats.CandidateBytes += size
		return p.emit(b.Hash, size)
	}
	return nil
}

// finish classifies the stored blobs after the last registry row.
func (p *blobPlanner) finish() error { return p.strays(nil) }

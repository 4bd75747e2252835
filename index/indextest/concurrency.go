package indextest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

var concurrencyTests = []test{
	{"VersionsOfOneUnit", testConcurrentVersions},
	{"SameName", testConcurrentSameName},
	{"CommitsAndClaims", testConcurrentCommitsAndClaims},
	{"CrossingLinks", testConcurrentCycle},
	{"DeleteAndLink", testConcurrentDeleteAndLink},
	{"LinkSetDedup", testLinkDedup},
}

// parallel runs fn(i) for i in [0, n) on n goroutines started together and
// returns when all are done, or fails the test after a minute.
func (e *env) parallel(n int, fn func(i int)) {
	e.t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		e.t.Fatal("concurrent writers did not finish within a minute (deadlock?)")
	}
}

// testConcurrentVersions: 8 writers each add 25 versions to one unit; the
// versions are 1..201 without gaps or repeats, and no writer sees an error.
func testConcurrentVersions(e *env) {
	const writers, each = 8, 25
	c := e.collection("c")
	a := e.asset(c.ID, "a")
	u := e.unit(c.ID, "u", index.Link{Target: a.ID})
	hs := make([][]cas.Hash, writers)
	for w := range hs {
		for range each {
			hs[w] = append(hs[w], e.blob())
		}
	}
	errs := make(chan error, writers*each)
	got := make([][]int64, writers)
	e.parallel(writers, func(w int) {
		for i := range each {
			var v index.Unit
			var created bool
			err := e.s.Update(e.ctx, func(tx index.Tx) (err error) {
				v, created, err = tx.CommitUnit(u.ID, index.UnitChange{Hash: hs[w][i]}, false)
				return err
			})
			if err != nil {
				errs <- fmt.Errorf("writer %d commit %d: %w", w, i, err)
				return
			}
			if !created || v.Hash != hs[w][i] {
				errs <- fmt.Errorf("writer %d commit %d: created %v, hash %s", w, i, created, short(v.Hash))
				return
			}
			got[w] = append(got[w], v.Version)
		}
	})
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	var all []int64
	for w := range got {
		if !slices.IsSorted(got[w]) {
			e.t.Fatalf("writer %d saw its versions out of order: %v", w, got[w])
		}
		all = append(all, got[w]...)
	}
	slices.Sort(all)
	for i, v := range all {
		if v != int64(i+2) {
			e.t.Fatalf("versions returned to writers are not 2..%d: position %d is %d", writers*each+1, i, v)
		}
	}
	hist := pages(e, "UnitVersions", index.ListOptions{}, index.MaxLimit, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.UnitVersions(e.ctx, u.ID, o)
	})
	e.wantVersions("UnitVersions after concurrent commits", unitVersions(hist), descending(writers*each+1))
	seen := map[cas.Hash]bool{}
	for i, h := range hist {
		if seen[h.Hash] {
			e.t.Fatalf("two versions name %s", short(h.Hash))
		}
		seen[h.Hash] = true
		e.wantLinks("links kept by every version", h.Links, []index.Link{assetLink(a.ID, 0)})
		if i > 0 && h.CreatedAt.After(hist[i-1].CreatedAt) {
			e.t.Fatalf("version %d created after version %d", h.Version, hist[i-1].Version)
		}
	}
	if latest := e.getUnit(index.Latest(u.ID)); latest.Version != writers*each+1 {
		e.t.Fatalf("latest = v%d", latest.Version)
	}
}

// testConcurrentSameName: of 8 creators of one name, exactly one wins; the
// others get a *ConflictError naming the winner.
func testConcurrentSameName(e *env) {
	const writers = 8
	c := e.collection("c")
	for round, name := range []string{"same.xml", "같은 이름"} {
		hs := make([]cas.Hash, writers)
		for i := range hs {
			hs[i] = e.blob()
		}
		ids := make([]uuid.UUID, writers)
		errs := make([]error, writers)
		e.parallel(writers, func(i int) {
			errs[i] = e.s.Update(e.ctx, func(tx index.Tx) error {
				if i%2 == 1 && round == 1 {
					a, err := tx.CreateAsset(index.NewAsset{Collection: c.ID, Name: name, Hash: hs[i], MediaType: "text/plain"})
					ids[i] = a.ID
					return err
				}
				u, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Name: name, Hash: hs[i], Draft: i%3 == 0})
				ids[i] = u.ID
				return err
			})
		})
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					e.t.Fatalf("round %d: writers %d and %d both created %q", round, winner, i, name)
				}
				winner = i
			}
		}
		if winner < 0 {
			e.t.Fatalf("round %d: nobody created %q: %v", round, name, errs)
		}
		for i, err := range errs {
			if i != winner {
				e.wantHolder(fmt.Sprintf("round %d writer %d", round, i), err, ids[winner])
			}
		}
	}
	// Renames racing onto one name.
	us := make([]uuid.UUID, writers)
	for i := range us {
		us[i] = e.unit(c.ID, fmt.Sprintf("racer %d", i)).ID
	}
	hs := make([]cas.Hash, writers)
	for i := range hs {
		hs[i] = e.blob()
	}
	errs := make([]error, writers)
	e.parallel(writers, func(i int) {
		errs[i] = e.s.Update(e.ctx, func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(us[i], index.UnitChange{Hash: hs[i], Name: ptr("finish line")}, i%2 == 0)
			return err
		})
	})
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, index.ErrConflict):
			e.t.Fatalf("rename %d: %v, want a conflict", i, err)
		}
	}
	if wins != 1 {
		e.t.Fatalf("%d renames onto one name succeeded, want 1", wins)
	}
}

// testConcurrentCommitsAndClaims: a sweep claiming blobs while writers name
// them: afterwards every committed version's blob is live, and every claimed
// blob is named by no version.
func testConcurrentCommitsAndClaims(e *env) {
	const n, writers = 48, 4
	c := e.collection("c")
	units := make([]uuid.UUID, writers)
	for i := range units {
		units[i] = e.unit(c.ID, "").ID
	}
	hs := make([]cas.Hash, n)
	for i := range hs {
		hs[i] = e.blob()
	}
	e.clock.Advance(2 * time1h) // every lease is old
	cutoff := e.clock.Now()
	committed := make([][]cas.Hash, writers)
	var claimed []cas.Hash
	var failure error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if failure == nil {
			failure = err
		}
	}
	// Each round, the writers name a hash each while the sweep claims the
	// same hashes, all started together.
	for round := 0; round < n/writers; round++ {
		batch := hs[round*writers : (round+1)*writers]
		e.parallel(writers+1, func(w int) {
			if w == writers {
				bs, err := e.s.ClaimBlobs(e.ctx, testSweep, batch, cutoff)
				if err != nil {
					fail(fmt.Errorf("ClaimBlobs: %w", err))
					return
				}
				mu.Lock()
				for _, b := range bs {
					claimed = append(claimed, b.Hash)
				}
				mu.Unlock()
				return
			}
			if round%2 == 1 {
				// Let the sweep start first now and then.
				time.Sleep(time.Duration(w*200) * time.Microsecond)
			}
			err := e.s.Update(e.ctx, func(tx index.Tx) error {
				_, _, err := tx.CommitUnit(units[w], index.UnitChange{Hash: batch[w]}, false)
				return err
			})
			switch {
			case err == nil:
				committed[w] = append(committed[w], batch[w])
			case errors.Is(err, index.ErrBlobMissing):
			default:
				fail(fmt.Errorf("CommitUnit: %w", err))
			}
		})
	}
	if failure != nil {
		e.t.Fatal(failure)
	}
	var all []cas.Hash
	for _, hs := range committed {
		all = append(all, hs...)
	}
	for _, h := range all {
		if b := e.getBlob(h); b.State != index.BlobLive {
			e.t.Fatalf("a committed version names blob %s in state %v", short(h), b.State)
		}
		if slices.Contains(claimed, h) {
			e.t.Fatalf("blob %s was claimed and committed", short(h))
		}
	}
	refs := e.referenced()
	for _, h := range claimed {
		if _, ok := slices.BinarySearchFunc(refs, h, func(a, b cas.Hash) int { return compareHash(a, b) }); ok {
			e.t.Fatalf("claimed blob %s is referenced", short(h))
		}
	}
	if len(all)+len(claimed) != n {
		e.t.Fatalf("%d committed + %d claimed != %d hashes", len(all), len(claimed), n)
	}
	e.t.Logf("%d commits, %d claims", len(all), len(claimed))
}

func compareHash(a, b cas.Hash) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// testConcurrentCycle: two writers adding a → b and b → a at once: at most
// one succeeds, so no cycle is ever stored.
func testConcurrentCycle(e *env) {
	c := e.collection("c")
	for round := range 6 {
		a := e.unit(c.ID, "")
		b := e.unit(c.ID, "")
		ha, hb := e.blob(), e.blob()
		errs := make([]error, 2)
		e.parallel(2, func(i int) {
			from, to, h := a.ID, b.ID, ha
			if i == 1 {
				from, to, h = b.ID, a.ID, hb
			}
			errs[i] = e.s.Update(e.ctx, func(tx index.Tx) error {
				_, _, err := tx.CommitUnit(from, index.UnitChange{Hash: h, Links: &[]index.Link{{Target: to}}}, round%2 == 1)
				return err
			})
		})
		if errs[0] == nil && errs[1] == nil {
			e.t.Fatalf("round %d: both a → b and b → a were stored: a cycle", round)
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, index.ErrInvalid) {
				e.t.Fatalf("round %d writer %d: %v, want ErrInvalid", round, i, err)
			}
		}
	}
}

// testConcurrentDeleteAndLink: deleting a target while another writer links
// it: never both, so latest versions never link a deleted entity.
func testConcurrentDeleteAndLink(e *env) {
	c := e.collection("c")
	for round := range 6 {
		var target uuid.UUID
		if round%2 == 0 {
			target = e.unit(c.ID, "").ID
		} else {
			target = e.asset(c.ID, "").ID
		}
		linker := e.unit(c.ID, "")
		h := e.blob()
		errs := make([]error, 2)
		e.parallel(2, func(i int) {
			if i == 0 {
				errs[0] = e.deleteEntity(target)
				return
			}
			errs[1] = e.s.Update(e.ctx, func(tx index.Tx) error {
				_, _, err := tx.CommitUnit(linker.ID, index.UnitChange{Hash: h, Links: &[]index.Link{{Target: target}}}, round%3 == 2)
				return err
			})
		})
		if errs[0] == nil && errs[1] == nil {
			e.t.Fatalf("round %d: the target was deleted and linked at once", round)
		}
		if errs[0] != nil && !errors.Is(errs[0], index.ErrConflict) {
			e.t.Fatalf("round %d: delete: %v, want ErrConflict", round, errs[0])
		}
		if errs[1] != nil && !errors.Is(errs[1], index.ErrInvalid) {
			e.t.Fatalf("round %d: link: %v, want ErrInvalid", round, errs[1])
		}
	}
}

// testLinkDedup: 1,000 versions of a unit with 50 unchanged links store the
// 50 link rows once (through the optional LinkRowCounter).
func testLinkDedup(e *env) {
	counter, ok := e.s.(LinkRowCounter)
	if !ok {
		e.t.Skipf("the store does not implement indextest.LinkRowCounter: link-set dedup (1,000 versions × 50 links) is not checked")
	}
	count := func() int64 {
		e.t.Helper()
		n, err := counter.LinkRowCount(e.ctx)
		e.wantOK("LinkRowCount", err)
		return n
	}
	c := e.collection("c")
	var links []index.Link
	var hs []cas.Hash
	for i := range 50 {
		if i%5 == 0 {
			links = append(links, index.Link{Target: e.unit(c.ID, "").ID, Version: int64(i % 3)})
		} else {
			links = append(links, index.Link{Target: e.asset(c.ID, "").ID})
		}
	}
	for range 1000 {
		hs = append(hs, e.blob())
	}
	before := count()
	u := e.createUnit(index.NewUnit{Collection: c.ID, Hash: hs[0], Links: links})
	first := count()
	if first-before != 50 {
		e.t.Fatalf("a unit with 50 links added %d link rows, want 50", first-before)
	}
	for i := 1; i < 1000; i += 100 {
		e.must("CommitUnit ×100", func(tx index.Tx) error {
			for j := i; j < min(i+100, 1000); j++ {
				ls := slices.Clone(links)
				if _, _, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: hs[j], Links: &ls}, false); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if got := e.getUnit(index.Latest(u.ID)); got.Version != 1000 || len(got.Links) != 50 {
		e.t.Fatalf("latest = v%d with %d links, want v1000 with 50", got.Version, len(got.Links))
	}
	if after := count(); after != first {
		e.t.Fatalf("999 versions with unchanged links added %d link rows, want 0", after-first)
	}
	// Another unit with the same link set shares it; a draft with it too.
	other := e.createUnit(index.NewUnit{Collection: c.ID, Links: links})
	e.commitUnit(other.ID, index.UnitChange{Hash: e.blob()}, true)
	if after := count(); after != first {
		e.t.Fatalf("another unit with the same links added %d link rows, want 0", after-first)
	}
	// A changed set is a new set.
	e.setLinks(u.ID, links[:10]...)
	if after := count(); after != first+10 {
		e.t.Fatalf("a new set of 10 links added %d link rows, want 10", after-first)
	}
}

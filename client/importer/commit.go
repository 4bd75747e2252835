package importer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// sched orders commits by dependencies: a node is committed once it is
// hashed, its bytes are stored, and every file it references is committed,
// so that its links can name their targets' uuids. A node whose dependency
// failed fails too. Commit workers pop ready nodes; pop returns nil once
// nothing can become ready any more.
type sched struct {
	im       *importer
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*node
	inflight int // queued or being committed
	upstream bool
	closed   bool
}

func (s *sched) init(im *importer) {
	s.im = im
	s.cond = sync.NewCond(&s.mu)
}

// hashed registers n's dependencies.
func (s *sched) hashed(n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.done {
		return
	}
	n.hashed = true
	for _, name := range n.deps {
		d := s.im.byName[name]
		switch {
		case d == nil:
		case d.done && d.err != nil:
			s.failLocked(n, fmt.Errorf("%s: not imported: it references %s, which was not imported", n.f.name, d.f.name), true)
			return
		case d.done:
		default:
			n.pending++
			d.dependents = append(d.dependents, n)
		}
	}
	s.readyLocked(n)
}

func (s *sched) markStored(n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.stored = true
	s.readyLocked(n)
}

func (s *sched) readyLocked(n *node) {
	if n.done || n.queued || !n.hashed || !n.stored || n.pending > 0 || s.closed {
		return
	}
	n.queued = true
	s.queue = append(s.queue, n)
	s.inflight++
	s.cond.Signal()
}

// committed records n's entity and readies what waited for it; n leaves
// the in-flight set.
func (s *sched) committed(n *node, id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.done, n.id = true, id
	for _, d := range n.dependents {
		d.pending--
		s.readyLocked(d)
	}
	n.dependents = nil
	s.inflight--
	s.closeIfIdleLocked()
}

// fail marks n and its dependents not imported. report says whether to
// count and report them (not when the whole run stopped).
func (s *sched) fail(n *node, err error, report bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.queued && !n.done {
		s.inflight--
		defer s.closeIfIdleLocked()
	}
	s.failLocked(n, err, report)
}

func (s *sched) failLocked(n *node, err error, report bool) {
	if n.done {
		return
	}
	n.done, n.err = true, err
	if report {
		s.im.cnt.failed.Add(1)
		s.im.report(err.Error())
	}
	deps := n.dependents
	n.dependents = nil
	for _, d := range deps {
		s.failLocked(d, fmt.Errorf("%s: not imported: it references %s, which was not imported", d.f.name, n.f.name), report)
	}
}

// upstreamDone says that no node will be hashed or stored any more.
func (s *sched) upstreamDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upstream = true
	s.closeIfIdleLocked()
}

func (s *sched) closeIfIdleLocked() {
	if s.upstream && s.inflight == 0 {
		s.closed = true
		s.cond.Broadcast()
	}
}

// pop returns the next node to commit, waiting for one; nil when done.
func (s *sched) pop() *node {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) == 0 && !s.closed {
		s.cond.Wait()
	}
	if len(s.queue) == 0 {
		return nil
	}
	n := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return n
}

// target returns the committed entity of a dependency (read after the
// dependency is done, which the scheduler's lock orders before n's pop).
func (s *sched) target(name string) (uuid.UUID, client.Kind, *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.im.byName[name]
	if d == nil || !d.done || d.err != nil {
		return uuid.Nil, "", nil
	}
	return d.id, d.kind, d
}

// commit creates or versions n's entity. Its error is one that stops the
// run (n leaves the scheduler, unreported); the failure of n alone fails n
// and what depends on it.
func (im *importer) commit(ctx context.Context, n *node) error {
	var id uuid.UUID
	var err error
	if n.isUnit {
		id, err = im.commitUnit(ctx, n)
	} else {
		id, err = im.commitAsset(ctx, n)
	}
	switch {
	case err == nil:
		im.sched.committed(n, id)
	case isFatal(err):
		im.sched.fail(n, err, false)
		return err
	default:
		im.failed(n, err)
	}
	return nil
}

// linksOf lists n's links: its references in order, then the /static/
// references of the HTML files it names, each target once.
func (im *importer) linksOf(n *node) ([]client.Link, error) {
	links := []client.Link{}
	seen := map[uuid.UUID]bool{}
	add := func(name string) (*node, error) {
		id, kind, d := im.sched.target(name)
		if d == nil {
			return nil, fmt.Errorf("%s: internal error: %s is not committed", n.f.name, name)
		}
		if !seen[id] {
			seen[id] = true
			links = append(links, client.Link{Target: id, Kind: kind})
		}
		return d, nil
	}
	for _, name := range n.deps {
		d, err := add(name)
		if err != nil {
			return nil, err
		}
		if d.f.scan && !d.isUnit {
			for _, s := range d.deps {
				if _, err := add(s); err != nil {
					return nil, err
				}
			}
		}
	}
	return links, nil
}

// sameLinks reports whether a stored unit's links are the unpinned links
// given, in the same order.
func sameLinks(stored, want []client.Link) bool {
	if len(stored) != len(want) {
		return false
	}
	for i := range stored {
		if stored[i].Target != want[i].Target || stored[i].Version != nil {
			return false
		}
	}
	return true
}

func (im *importer) commitUnit(ctx context.Context, n *node) (uuid.UUID, error) {
	name := n.f.name
	links, err := im.linksOf(n)
	if err != nil {
		return uuid.Nil, err
	}
	if _, ok := im.assets[name]; ok {
		return uuid.Nil, fmt.Errorf("%w: %s: the collection holds an asset of that name; it cannot become a unit", ErrBadInput, name)
	}
	ex, exists := im.units[name]
	if exists && ex.Hash == n.hash && sameLinks(ex.Links, links) {
		im.cnt.same.Add(1)
		im.links.Add(int64(len(links)))
		return ex.UUID, nil
	}
	data, err := readWhole(n.f.path, maxUnitSize)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%s: %w", name, err)
	}
	if cas.Sum(data) != n.hash {
		return uuid.Nil, fmt.Errorf("%w: %s", ErrChanged, name)
	}
	olx := string(data)
	if !exists {
		u, err := im.c.CreateUnit(ctx, client.NewUnit{Collection: im.col, Name: name, OLX: olx, Links: links, GarbageCollect: im.opt.GarbageCollect})
		switch {
		case err == nil:
			im.cnt.created.Add(1)
			im.unitStored(n, links)
			return u.UUID, nil
		case errors.Is(err, client.ErrConflict):
			// Someone else created it meanwhile: make a version of theirs.
			u, ferr := im.findUnit(ctx, name)
			if ferr != nil {
				return uuid.Nil, fmt.Errorf("%s: create unit: %w (%w)", name, err, ferr)
			}
			ex = u
		default:
			return uuid.Nil, fmt.Errorf("%s: create unit: %w", name, err)
		}
	}
	u, created, err := im.c.NewUnitVersion(ctx, ex.UUID, client.UnitChange{OLX: olx, Links: links})
	if err != nil {
		return uuid.Nil, fmt.Errorf("%s: new version of unit %s: %w", name, ex.UUID, err)
	}
	if created {
		im.cnt.versions.Add(1)
		im.unitStored(n, links)
	} else {
		im.cnt.same.Add(1)
		im.links.Add(int64(len(links)))
	}
	return u.UUID, nil
}

// unitStored counts a unit write: its links, and its OLX bytes as uploaded
// when the server lacked them.
func (im *importer) unitStored(n *node, links []client.Link) {
	im.links.Add(int64(len(links)))
	if n.blob != nil && n.blob.viaUnit {
		im.countUploaded(n.blob)
	}
}

// findUnit looks a unit up by name (after a 409 on create).
func (im *importer) findUnit(ctx context.Context, name string) (client.Unit, error) {
	p, err := im.c.CollectionUnits(ctx, im.col, client.ListOptions{Name: &name, Limit: 1})
	if err != nil {
		return client.Unit{}, err
	}
	if len(p.Items) == 0 {
		return client.Unit{}, fmt.Errorf("%w: the name %q is held by an asset or a draft", ErrBadInput, name)
	}
	return p.Items[0], nil
}

// findAsset looks an asset up by name (after a 409 on create).
func (im *importer) findAsset(ctx context.Context, name string) (client.Asset, error) {
	p, err := im.c.CollectionAssets(ctx, im.col, client.ListOptions{Name: &name, Limit: 1})
	if err != nil {
		return client.Asset{}, err
	}
	if len(p.Items) == 0 {
		return client.Asset{}, fmt.Errorf("%w: the name %q is held by a unit or a draft", ErrBadInput, name)
	}
	return p.Items[0], nil
}

func (im *importer) commitAsset(ctx context.Context, n *node) (uuid.UUID, error) {
	name, mt := n.f.name, n.f.mediaType
	if _, ok := im.units[name]; ok {
		return uuid.Nil, fmt.Errorf("%w: %s: the collection holds a unit of that name; it cannot become an asset", ErrBadInput, name)
	}
	content := client.Content{Hash: n.hash, Body: im.fileBody(n, nil)}
	ex, exists := im.assets[name]
	if exists && ex.Hash == n.hash && ex.MediaType == mt {
		im.cnt.same.Add(1)
		return ex.UUID, nil
	}
	if !exists {
		a, err := im.c.CreateAsset(ctx, client.NewAsset{Collection: im.col, Name: name, MediaType: mt, GarbageCollect: im.opt.GarbageCollect}, content)
		switch {
		case err == nil:
			im.cnt.created.Add(1)
			return a.UUID, nil
		case errors.Is(err, client.ErrConflict):
			a, ferr := im.findAsset(ctx, name)
			if ferr != nil {
				return uuid.Nil, fmt.Errorf("%s: create asset: %w (%w)", name, err, ferr)
			}
			ex = a
		default:
			return uuid.Nil, fmt.Errorf("%s: create asset: %w", name, err)
		}
	}
	a, created, err := im.c.NewAssetVersion(ctx, ex.UUID, client.AssetChange{MediaType: &mt}, content)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%s: new version of asset %s: %w", name, ex.UUID, err)
	}
	if created {
		im.cnt.versions.Add(1)
	} else {
		im.cnt.same.Add(1)
	}
	return a.UUID, nil
}

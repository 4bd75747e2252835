package index

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

func ptr[T any](v T) *T { return &v }

func TestHeadsBase(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      Heads
		draft  bool
		want   int64
		wantOK bool
	}{
		{"published over latest and draft", Heads{Latest: 3, HasDraft: true}, false, 3, true},
		{"draft over latest and draft", Heads{Latest: 3, HasDraft: true}, true, 0, true},
		{"draft over latest only", Heads{Latest: 3}, true, 3, true},
		{"published over latest only", Heads{Latest: 3}, false, 3, true},
		{"published over draft only", Heads{HasDraft: true}, false, 0, true},
		{"draft over draft only", Heads{HasDraft: true}, true, 0, true},
		{"nothing", Heads{}, false, 0, false},
		{"draft over nothing", Heads{}, true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.h.Base(tc.draft)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("Base(%v) = %d, %v; want %d, %v", tc.draft, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestNextVersion(t *testing.T) {
	h1, h2 := cas.Sum([]byte("one")), cas.Sum([]byte("two"))
	target := uuid.MustParse(testUUID)
	links := []Link{{Target: target, Kind: KindAsset}}
	none := []Link{}
	unit := Content{Name: "a.xml", Hash: h1, GarbageCollect: true, Links: links, LinkSet: LinkSetID(links)}
	asset := Content{Name: "v.mp4", MediaType: "video/mp4", Hash: h1}
	latest := Heads{Latest: 2, LatestName: "a.xml"}
	draftOnly := Heads{HasDraft: true}
	for _, tc := range []struct {
		name          string
		h             Heads
		base          *Content
		ch            Change
		draft         bool
		want          Content
		wantUnchanged bool
	}{
		{"omitted keeps the base", latest, &unit, Change{Hash: h2}, false,
			Content{Name: "a.xml", Hash: h2, GarbageCollect: true, Links: links, LinkSet: LinkSetID(links)}, false},
		{"identical to the latest", latest, &unit, Change{Hash: h1}, false, unit, true},
		{"identical with the same links given", latest, &unit, Change{Hash: h1, Links: &links}, false, unit, true},
		{"a draft is never unchanged", latest, &unit, Change{Hash: h1}, true, unit, false},
		{"identical to a draft-only base publishes", draftOnly, &unit, Change{Hash: h1}, false, unit, false},
		{"empty links remove all", latest, &unit, Change{Hash: h1, Links: &none}, false,
			Content{Name: "a.xml", Hash: h1, GarbageCollect: true, Links: none, LinkSet: LinkSetID(none)}, false},
		{"empty name is a name change", latest, &unit, Change{Hash: h1, Name: ptr("")}, false,
			Content{Hash: h1, GarbageCollect: true, Links: links, LinkSet: LinkSetID(links)}, false},
		{"flag given", latest, &unit, Change{Hash: h1, GarbageCollect: ptr(false)}, false,
			Content{Name: "a.xml", Hash: h1, Links: links, LinkSet: LinkSetID(links)}, false},
		{"asset media type kept", latest, &asset, Change{Hash: h2}, false,
			Content{Name: "v.mp4", MediaType: "video/mp4", Hash: h2}, false},
		{"asset media type given", latest, &asset, Change{Hash: h1, MediaType: ptr("video/webm")}, false,
			Content{Name: "v.mp4", MediaType: "video/webm", Hash: h1}, false},
		{"asset identical", latest, &asset, Change{Hash: h1, MediaType: ptr("video/mp4"), Name: ptr("v.mp4")}, false, asset, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, unchanged, err := NextVersion(tc.h, tc.base, tc.ch, tc.draft)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Same(tc.want) || !SameLinks(got.Links, tc.want.Links) || unchanged != tc.wantUnchanged {
				t.Fatalf("NextVersion = %+v, unchanged %v; want %+v, %v", got, unchanged, tc.want, tc.wantUnchanged)
			}
		})
	}
	if _, _, err := NextVersion(Heads{}, nil, Change{Hash: h1}, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NextVersion without a base: %v, want ErrNotFound", err)
	}
}

func TestNextCollection(t *testing.T) {
	latest := NewCollection{CollectionFields: CollectionFields{Name: "n", Description: "d", Owner: "o", Author: "a", License: "l"}}
	for _, tc := range []struct {
		name          string
		p             CollectionPatch
		want          NewCollection
		wantUnchanged bool
	}{
		{"empty patch", CollectionPatch{}, latest, true},
		{"same values", CollectionPatch{Name: ptr("n"), GarbageCollect: ptr(false)}, latest, true},
		{"a field", CollectionPatch{License: ptr("MIT")},
			NewCollection{CollectionFields: CollectionFields{Name: "n", Description: "d", Owner: "o", Author: "a", License: "MIT"}}, false},
		{"emptied", CollectionPatch{Description: ptr("")},
			NewCollection{CollectionFields: CollectionFields{Name: "n", Owner: "o", Author: "a", License: "l"}}, false},
		{"the flag", CollectionPatch{GarbageCollect: ptr(true)},
			NewCollection{CollectionFields: latest.CollectionFields, GarbageCollect: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, unchanged := NextCollection(latest, tc.p)
			if got != tc.want || unchanged != tc.wantUnchanged {
				t.Fatalf("NextCollection = %+v, %v; want %+v, %v", got, unchanged, tc.want, tc.wantUnchanged)
			}
		})
	}
}

func TestHeadsTransitions(t *testing.T) {
	s1, s2 := cas.Sum([]byte("s1")), cas.Sum([]byte("s2"))
	c := Content{Name: "new", LinkSet: s2}
	both := Heads{Latest: 4, HasDraft: true, LatestName: "l", DraftName: "d", LatestLinks: s1, DraftLinks: s2}
	if got, want := both.Commit(c, false), (Heads{Latest: 5, HasDraft: true, LatestName: "new", DraftName: "d", LatestLinks: s2, DraftLinks: s2}); got != want {
		t.Errorf("Commit published = %+v, want %+v", got, want)
	}
	if got, want := (Heads{Latest: 4, LatestName: "l", LatestLinks: s1}).Commit(c, true), (Heads{Latest: 4, HasDraft: true, LatestName: "l", DraftName: "new", LatestLinks: s1, DraftLinks: s2}); got != want {
		t.Errorf("Commit draft = %+v, want %+v", got, want)
	}
	if got, want := (Heads{}).Commit(c, false), (Heads{Latest: 1, LatestName: "new", LatestLinks: s2}); got != want {
		t.Errorf("new entity = %+v, want %+v", got, want)
	}
	got, err := both.PublishDraft()
	if want := (Heads{Latest: 5, LatestName: "d", LatestLinks: s2}); err != nil || got != want {
		t.Errorf("PublishDraft = %+v, %v; want %+v", got, err, want)
	}
	got, empty, err := both.DeleteDraft()
	if want := (Heads{Latest: 4, LatestName: "l", LatestLinks: s1}); err != nil || empty || got != want {
		t.Errorf("DeleteDraft = %+v, %v, %v; want %+v", got, empty, err, want)
	}
	if _, empty, err := (Heads{HasDraft: true, DraftName: "d"}).DeleteDraft(); err != nil || !empty {
		t.Errorf("DeleteDraft of a draft-only entity: empty %v, %v; want empty", empty, err)
	}
	noDraft := Heads{Latest: 1}
	if _, err := noDraft.PublishDraft(); !errors.Is(err, ErrNotFound) {
		t.Errorf("PublishDraft without a draft: %v", err)
	}
	if _, _, err := noDraft.DeleteDraft(); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteDraft without a draft: %v", err)
	}
	if !both.HasLinkSet(s1) || !both.HasLinkSet(s2) || both.HasLinkSet(cas.Hash{}) {
		t.Errorf("HasLinkSet of %+v", both)
	}
	// A stale set of a version that is gone does not count.
	if (Heads{HasDraft: true, LatestLinks: s1}).HasLinkSet(s1) || (Heads{Latest: 1, DraftLinks: s2}).HasLinkSet(s2) {
		t.Error("HasLinkSet counts a set of a version the entity does not have")
	}
}

func TestLiveBlob(t *testing.T) {
	h := cas.Sum([]byte("b"))
	for _, tc := range []struct {
		name  string
		row   Blob
		found bool
		ok    bool
	}{
		{"live", Blob{State: BlobLive, Size: 7}, true, true},
		{"pending", Blob{State: BlobPending, Size: -1}, true, false},
		{"deleting", Blob{State: BlobDeleting, Size: 7}, true, false},
		{"no row", Blob{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size, err := LiveBlob(h, tc.row, tc.found)
			var missing *BlobMissingError
			switch {
			case tc.ok && (err != nil || size != 7):
				t.Fatalf("LiveBlob = %d, %v; want 7", size, err)
			case !tc.ok && (!errors.As(err, &missing) || missing.Hash != h || !errors.Is(err, ErrBlobMissing)):
				t.Fatalf("LiveBlob = %d, %v; want a BlobMissingError", size, err)
			}
		})
	}
}

package index

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"
)

func TestHeldNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Heads
		want []string
	}{
		{"latest and draft", Heads{Latest: 1, HasDraft: true, LatestName: "a", DraftName: "b"}, []string{"a", "b"}},
		{"the same name once", Heads{Latest: 1, HasDraft: true, LatestName: "a", DraftName: "a"}, []string{"a"}},
		{"no name holds nothing", Heads{Latest: 1, HasDraft: true, DraftName: "b"}, []string{"b"}},
		{"draft only", Heads{HasDraft: true, DraftName: "b"}, []string{"b"}},
		{"stale names of absent versions", Heads{LatestName: "a", DraftName: "b"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.HeldNames(); !slices.Equal(got, tc.want) {
				t.Fatalf("HeldNames = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNameMoves(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		before, after          []string
		wantClaim, wantRelease []string
	}{
		{"new entity", nil, []string{"a"}, []string{"a"}, nil},
		{"rename", []string{"a"}, []string{"b"}, []string{"b"}, []string{"a"}},
		{"draft takes a second name", []string{"a"}, []string{"a", "b"}, []string{"b"}, nil},
		{"publish the draft's name", []string{"a", "b"}, []string{"b"}, nil, []string{"a"}},
		{"unchanged", []string{"a", "b"}, []string{"b", "a"}, nil, nil},
		{"all go", []string{"a", "b"}, nil, nil, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claim, release := NameMoves(tc.before, tc.after)
			if !slices.Equal(claim, tc.wantClaim) || !slices.Equal(release, tc.wantRelease) {
				t.Fatalf("NameMoves = %q, %q; want %q, %q", claim, release, tc.wantClaim, tc.wantRelease)
			}
		})
	}
}

func TestNameTaken(t *testing.T) {
	holder := uuid.MustParse(testUUID)
	err := NameTaken(uuid.Nil, "a.xml", holder)
	var ce *ConflictError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ce) || ce.Holder != holder {
		t.Fatalf("NameTaken = %v, want a ConflictError naming %s", err, holder)
	}
}

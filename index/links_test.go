package index

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"
)

func TestResolveLinks(t *testing.T) {
	u, a, c, gone := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	kinds := map[uuid.UUID]Kind{u: KindUnit, a: KindAsset, c: KindCollection}
	for _, tc := range []struct {
		name    string
		given   []Link
		want    []Link
		invalid bool
	}{
		{"none", nil, []Link{}, false},
		{"kinds filled in", []Link{{Target: u}, {Target: a, Version: 2}},
			[]Link{{Target: u, Kind: KindUnit}, {Target: a, Kind: KindAsset, Version: 2}}, false},
		{"matching kind given", []Link{{Target: a, Kind: KindAsset}}, []Link{{Target: a, Kind: KindAsset}}, false},
		{"repeats dropped, first kept", []Link{{Target: u, Version: 1}, {Target: a}, {Target: u, Version: 1, Kind: KindUnit}},
			[]Link{{Target: u, Kind: KindUnit, Version: 1}, {Target: a, Kind: KindAsset}}, false},
		{"two pins of one target", []Link{{Target: u}, {Target: u, Version: 3}},
			[]Link{{Target: u, Kind: KindUnit}, {Target: u, Kind: KindUnit, Version: 3}}, false},
		{"unknown target", []Link{{Target: gone}}, nil, true},
		{"collection target", []Link{{Target: c}}, nil, true},
		{"wrong kind", []Link{{Target: a, Kind: KindUnit}}, nil, true},
		{"negative pin", []Link{{Target: u, Version: -1}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveLinks(tc.given, kinds)
			if tc.invalid {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ResolveLinks = %v, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got == nil || !SameLinks(got, tc.want) {
				t.Fatalf("ResolveLinks = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestLinkTargets(t *testing.T) {
	u, v, a := uuid.New(), uuid.New(), uuid.New()
	links := []Link{{Target: u, Kind: KindUnit}, {Target: a, Kind: KindAsset}, {Target: u, Kind: KindUnit, Version: 2}, {Target: v, Kind: KindUnit}}
	if got, want := LinkTargets(links), []uuid.UUID{u, a, v}; !slices.Equal(got, want) {
		t.Errorf("LinkTargets = %v, want %v", got, want)
	}
	if got, want := TargetsOfKind(links, KindUnit), []uuid.UUID{u, v}; !slices.Equal(got, want) {
		t.Errorf("TargetsOfKind(unit) = %v, want %v", got, want)
	}
	if got, want := TargetsOfKind(links, KindAsset), []uuid.UUID{a}; !slices.Equal(got, want) {
		t.Errorf("TargetsOfKind(asset) = %v, want %v", got, want)
	}
	if got := TargetsOfKind(nil, KindUnit); got != nil {
		t.Errorf("TargetsOfKind(nil) = %v, want nil", got)
	}
	if err := CycleError(u); !errors.Is(err, ErrInvalid) {
		t.Errorf("CycleError = %v, want ErrInvalid", err)
	}
}

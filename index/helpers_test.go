package index

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

func TestEntityCursorRoundTrip(t *testing.T) {
	ids := []uuid.UUID{uuid.Nil, uuid.MustParse(testUUID), uuid.Max}
	times := []time.Time{
		time.Unix(0, 0).UTC(),
		time.Date(2031, 3, 1, 9, 0, 0, 1000, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), // before the epoch: negative nanoseconds
		time.Date(2200, 1, 1, 0, 0, 0, 0, time.FixedZone("KST", 9*3600)),
	}
	for _, tm := range times {
		for _, id := range ids {
			c := EncodeEntityCursor(tm, id)
			gotT, gotID, err := DecodeEntityCursor(c)
			if err != nil {
				t.Fatalf("DecodeEntityCursor(EncodeEntityCursor(%s, %s)): %v", tm, id, err)
			}
			if !gotT.Equal(tm) || gotID != id {
				t.Errorf("cursor round trip: (%s, %s) → (%s, %s)", tm, id, gotT, gotID)
			}
			if gotT.Location() != time.UTC {
				t.Errorf("decoded time is in %v, want UTC", gotT.Location())
			}
			if _, err := DecodeVersionCursor(c); !errors.Is(err, ErrInvalid) {
				t.Errorf("an entity cursor decodes as a version cursor: %v", err)
			}
		}
	}
	// Cursors are URL-safe without escaping.
	c := EncodeEntityCursor(time.Unix(0, math.MaxInt64), uuid.Max)
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			t.Fatalf("cursor %q has %q, not URL-safe", c, r)
		}
	}
}

func TestEntityCursorOrder(t *testing.T) {
	// Two entities created at once differ by their uuid in the cursor.
	tm := time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC)
	a, b := uuid.MustParse("00000000-0000-0000-0000-000000000001"), uuid.MustParse("00000000-0000-0000-0000-000000000002")
	if EncodeEntityCursor(tm, a) == EncodeEntityCursor(tm, b) {
		t.Error("cursors of two uuids at one time are equal")
	}
	if EncodeEntityCursor(tm, a) == EncodeEntityCursor(tm.Add(time.Microsecond), a) {
		t.Error("cursors of one uuid at two times are equal")
	}
}

func TestVersionCursorRoundTrip(t *testing.T) {
	for _, v := range []int64{1, 2, 100, 1 << 31, 1 << 53, math.MaxInt64} {
		c := EncodeVersionCursor(v)
		got, err := DecodeVersionCursor(c)
		if err != nil || got != v {
			t.Errorf("version cursor %d → %d, %v", v, got, err)
		}
		if _, _, err := DecodeEntityCursor(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("a version cursor decodes as an entity cursor: %v", err)
		}
	}
	for _, v := range []int64{0, -1, math.MinInt64} {
		if got, err := DecodeVersionCursor(EncodeVersionCursor(v)); !errors.Is(err, ErrInvalid) {
			t.Errorf("version cursor of %d decodes to %d, %v; want ErrInvalid", v, got, err)
		}
	}
}

func TestDecodeBadCursors(t *testing.T) {
	entity := EncodeEntityCursor(time.Unix(1, 0), uuid.Max)
	version := EncodeVersionCursor(5)
	raw := func(b ...byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	bad := []string{
		"", "x", "!", "====", "not a cursor", "\x00", entity + "=", entity + "A", entity[1:], entity[:len(entity)-1],
		version + "A", version[:len(version)-1], "A" + version,
		base64.URLEncoding.EncodeToString(make([]byte, 25)), // padded
		base64.StdEncoding.EncodeToString(append([]byte{'e'}, make([]byte, 24)...)) + "+/",
		raw(), raw('e'), raw('v'), raw(append([]byte{'x'}, make([]byte, 24)...)...), raw(append([]byte{'x'}, make([]byte, 8)...)...),
		raw(append([]byte{'e'}, make([]byte, 23)...)...), raw(append([]byte{'e'}, make([]byte, 25)...)...),
		raw(append([]byte{'v'}, make([]byte, 7)...)...), raw(append([]byte{'v'}, make([]byte, 9)...)...),
	}
	for _, c := range bad {
		if tm, id, err := DecodeEntityCursor(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeEntityCursor(%q) = %s, %s, %v; want ErrInvalid", c, tm, id, err)
		} else if !tm.IsZero() || id != uuid.Nil {
			t.Errorf("DecodeEntityCursor(%q) returned values with its error", c)
		}
		if v, err := DecodeVersionCursor(c); !errors.Is(err, ErrInvalid) || v != 0 {
			t.Errorf("DecodeVersionCursor(%q) = %d, %v; want 0, ErrInvalid", c, v, err)
		}
	}
}

func TestPageLimit(t *testing.T) {
	for limit, want := range map[int]int{0: DefaultLimit, 1: 1, 2: 2, 100: 100, MaxLimit: MaxLimit} {
		got, err := PageLimit(ListOptions{Limit: limit})
		if err != nil || got != want {
			t.Errorf("PageLimit(%d) = %d, %v; want %d", limit, got, err, want)
		}
	}
	for _, limit := range []int{-1, -1000, MaxLimit + 1, math.MaxInt, math.MinInt} {
		if got, err := PageLimit(ListOptions{Limit: limit}); !errors.Is(err, ErrInvalid) {
			t.Errorf("PageLimit(%d) = %d, %v; want ErrInvalid", limit, got, err)
		}
	}
	if DefaultLimit != 100 || MaxLimit != 1000 {
		t.Errorf("page limits %d/%d differ from API.md's 100/1000", DefaultLimit, MaxLimit)
	}
}

func TestNormalizeLinks(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for _, tc := range []struct {
		in, want []Link
	}{
		{nil, []Link{}},
		{[]Link{}, []Link{}},
		{[]Link{{Target: a}}, []Link{{Target: a}}},
		{
			[]Link{{Target: a}, {Target: b, Version: 2}, {Target: a}, {Target: b, Version: 3}, {Target: b, Version: 2}},
			[]Link{{Target: a}, {Target: b, Version: 2}, {Target: b, Version: 3}},
		},
		// The first of (target, version) is kept, whatever the kind.
		{
			[]Link{{Target: c, Kind: KindAsset}, {Target: c}, {Target: c, Kind: KindUnit}, {Target: a, Kind: KindUnit}},
			[]Link{{Target: c, Kind: KindAsset}, {Target: a, Kind: KindUnit}},
		},
		// Order is the writer's.
		{[]Link{{Target: c}, {Target: b}, {Target: a}}, []Link{{Target: c}, {Target: b}, {Target: a}}},
	} {
		in := slices.Clone(tc.in)
		got := NormalizeLinks(tc.in)
		if got == nil {
			t.Errorf("NormalizeLinks(%v) = nil", tc.in)
		}
		if !SameLinks(got, tc.want) {
			t.Errorf("NormalizeLinks(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !SameLinks(in, tc.in) {
			t.Errorf("NormalizeLinks changed its input")
		}
	}
	// Normalizing twice changes nothing.
	many := make([]Link, 0, 300)
	for i := range 300 {
		many = append(many, Link{Target: []uuid.UUID{a, b, c}[i%3], Version: int64(i % 7)})
	}
	once := NormalizeLinks(many)
	if len(once) != 21 || !SameLinks(NormalizeLinks(once), once) {
		t.Errorf("NormalizeLinks of 300 links: %d kept, idempotent %v", len(once), SameLinks(NormalizeLinks(once), once))
	}
}

func TestLinkSetID(t *testing.T) {
	a, b := uuid.MustParse(testUUID), uuid.MustParse("00000000-0000-0000-0000-000000000001")
	if got, want := LinkSetID(nil), cas.Sum(nil); got != want {
		t.Errorf("LinkSetID(nil) = %s, want the hash of no bytes %s", got, want)
	}
	if LinkSetID([]Link{}) != LinkSetID(nil) {
		t.Error("LinkSetID of an empty slice differs from nil")
	}
	set := []Link{{Target: a, Kind: KindAsset}, {Target: b, Kind: KindUnit, Version: 3}}
	if LinkSetID(set) != LinkSetID(slices.Clone(set)) {
		t.Error("LinkSetID is not deterministic")
	}
	distinct := map[cas.Hash]string{}
	for name, ls := range map[string][]Link{
		"set":          set,
		"reversed":     {set[1], set[0]},
		"other kind":   {{Target: a, Kind: KindUnit}, set[1]},
		"other pin":    {set[0], {Target: b, Kind: KindUnit, Version: 4}},
		"unpinned":     {set[0], {Target: b, Kind: KindUnit}},
		"prefix":       set[:1],
		"repeated":     {set[0], set[0], set[1]},
		"other target": {{Target: b, Kind: KindAsset}, set[1]},
		"empty":        nil,
	} {
		id := LinkSetID(ls)
		if other, ok := distinct[id]; ok {
			t.Errorf("LinkSetID(%s) = LinkSetID(%s)", name, other)
		}
		distinct[id] = name
	}
	// The layout is fixed: kind, target, big-endian version, 25 bytes a link.
	var buf []byte
	for _, l := range set {
		buf = append(buf, byte(l.Kind))
		buf = append(buf, l.Target[:]...)
		buf = append(buf, 0, 0, 0, 0, 0, 0, 0, byte(l.Version))
	}
	if LinkSetID(set) != cas.Sum(buf) {
		t.Error("LinkSetID changed its layout: stored link-set ids would no longer match")
	}
}

func TestSameLinks(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	x := []Link{{Target: a}, {Target: b, Version: 1}}
	for _, tc := range []struct {
		a, b []Link
		want bool
	}{
		{nil, nil, true},
		{nil, []Link{}, true},
		{x, slices.Clone(x), true},
		{x, []Link{x[1], x[0]}, false},
		{x, x[:1], false},
		{x, []Link{{Target: a, Kind: KindUnit}, x[1]}, false},
	} {
		if got := SameLinks(tc.a, tc.b); got != tc.want {
			t.Errorf("SameLinks(%v, %v) = %v", tc.a, tc.b, got)
		}
	}
}

func TestReaches(t *testing.T) {
	n := make([]uuid.UUID, 8)
	for i := range n {
		n[i] = uuid.MustParse(fmt.Sprintf("00000000-0000-0000-0000-%012d", i))
	}
	// 0→1→2→3, 1→4, 4→1 (a cycle not through 5), 6 isolated, 7→7.
	graph := map[uuid.UUID][]uuid.UUID{
		n[0]: {n[1]}, n[1]: {n[2], n[4]}, n[2]: {n[3]}, n[4]: {n[1]}, n[7]: {n[7]},
	}
	calls := map[uuid.UUID]int{}
	edges := func(id uuid.UUID) ([]uuid.UUID, error) {
		calls[id]++
		return graph[id], nil
	}
	for _, tc := range []struct {
		from []uuid.UUID
		to   uuid.UUID
		want bool
	}{
		{[]uuid.UUID{n[0]}, n[3], true},
		{[]uuid.UUID{n[0]}, n[4], true},
		{[]uuid.UUID{n[4]}, n[3], true},
		{[]uuid.UUID{n[3]}, n[0], false},
		{[]uuid.UUID{n[0]}, n[5], false}, // terminates despite the 1↔4 cycle
		{[]uuid.UUID{n[6]}, n[0], false},
		{[]uuid.UUID{n[7]}, n[6], false},
		{[]uuid.UUID{n[7]}, n[7], true}, // from contains to
		{[]uuid.UUID{n[6], n[2]}, n[3], true},
		{nil, n[0], false},
	} {
		clear(calls)
		got, err := Reaches(tc.from, tc.to, edges)
		if err != nil || got != tc.want {
			t.Errorf("Reaches(%v, %v) = %v, %v; want %v", tc.from, tc.to, got, err, tc.want)
		}
		for id, c := range calls {
			if c > 1 {
				t.Errorf("Reaches(%v, %v) asked the edges of %v %d times", tc.from, tc.to, id, c)
			}
		}
	}
	// An error from edges stops the search and comes back.
	boom := errors.New("boom")
	_, err := Reaches([]uuid.UUID{n[0]}, n[5], func(id uuid.UUID) ([]uuid.UUID, error) {
		if id == n[2] {
			return nil, boom
		}
		return graph[id], nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("Reaches with a failing edges = %v, want boom", err)
	}
	// The caller's from slice is not modified.
	from := []uuid.UUID{n[0], n[6]}
	if _, err := Reaches(from[:1], n[5], edges); err != nil || from[1] != n[6] {
		t.Errorf("Reaches wrote into its argument: %v", from)
	}
	// A long chain is walked without recursion limits.
	long := map[uuid.UUID]uuid.UUID{}
	chain := make([]uuid.UUID, 10000)
	for i := range chain {
		chain[i] = uuid.New()
		if i > 0 {
			long[chain[i-1]] = chain[i]
		}
	}
	got, err := Reaches(chain[:1], chain[len(chain)-1], func(id uuid.UUID) ([]uuid.UUID, error) {
		if next, ok := long[id]; ok {
			return []uuid.UUID{next}, nil
		}
		return nil, nil
	})
	if err != nil || !got {
		t.Errorf("Reaches over a chain of 10000 = %v, %v", got, err)
	}
}

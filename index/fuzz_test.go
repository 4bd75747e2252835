package index

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseRef: ParseRef never panics; what it accepts prints back as the
// input in lower case and parses again to the same ref; what it refuses
// wraps ErrInvalid.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		testUUID, testUUID + "@1", testUUID + "@draft", strings.ToUpper(testUUID) + "@12", testUUID + "@0",
		testUUID + "@01", testUUID + "@9007199254740993", "@", "", testUUID + "@@",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseRef(%q) error %v does not wrap ErrInvalid", s, err)
			}
			if r != (Ref{}) {
				t.Fatalf("ParseRef(%q) returned %+v with its error", s, r)
			}
			return
		}
		if r.Draft && r.Version != 0 || r.Version < 0 || r.Version > 1<<53 {
			t.Fatalf("ParseRef(%q) = %+v: not a ref the index can hold", s, r)
		}
		if got := r.String(); got != strings.ToLower(s) {
			t.Fatalf("ParseRef(%q).String() = %q, want the input in lower case", s, got)
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRef(%q) = %+v, then %+v, %v", r.String(), r, again, err)
		}
	})
}

// FuzzDecodeCursor: decoding any string never panics; a cursor that decodes
// encodes back to one that decodes to the same position; errors wrap
// ErrInvalid.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeEntityCursor(time.Date(2031, 3, 1, 9, 0, 0, 1000, time.UTC), [16]byte{1, 2, 3}))
	f.Add(EncodeVersionCursor(1))
	f.Add(EncodeVersionCursor(1 << 53))
	f.Add("")
	f.Add("not a cursor")
	f.Fuzz(func(t *testing.T, s string) {
		tm, id, err := DecodeEntityCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeEntityCursor(%q) error %v does not wrap ErrInvalid", s, err)
			}
		} else {
			tm2, id2, err := DecodeEntityCursor(EncodeEntityCursor(tm, id))
			if err != nil || !tm2.Equal(tm) || id2 != id {
				t.Fatalf("entity cursor %q: (%s, %s) re-encodes to (%s, %s), %v", s, tm, id, tm2, id2, err)
			}
			if _, err := DecodeVersionCursor(s); err == nil {
				t.Fatalf("%q decodes as both an entity and a version cursor", s)
			}
		}
		v, err := DecodeVersionCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeVersionCursor(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if v <= 0 {
			t.Fatalf("DecodeVersionCursor(%q) = %d, not a version", s, v)
		}
		if v2, err := DecodeVersionCursor(EncodeVersionCursor(v)); err != nil || v2 != v {
			t.Fatalf("version cursor %q: %d re-encodes to %d, %v", s, v, v2, err)
		}
	})
}

package index

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

const testUUID = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"

func TestParseRef(t *testing.T) {
	id := uuid.MustParse(testUUID)
	good := []struct {
		in   string
		want Ref
		str  string // String() of the result, "" for in
	}{
		{testUUID, Ref{ID: id}, ""},
		{strings.ToUpper(testUUID), Ref{ID: id}, testUUID},
		{testUUID + "@1", Ref{ID: id, Version: 1}, ""},
		{testUUID + "@42", Ref{ID: id, Version: 42}, ""},
		{testUUID + "@9007199254740992", Ref{ID: id, Version: 1 << 53}, ""},
		{testUUID + "@draft", Ref{ID: id, Draft: true}, ""},
		{strings.ToUpper(testUUID) + "@draft", Ref{ID: id, Draft: true}, testUUID + "@draft"},
		{"00000000-0000-0000-0000-000000000000", Ref{}, ""},
	}
	for _, tc := range good {
		got, err := ParseRef(tc.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		want := tc.str
		if want == "" {
			want = tc.in
		}
		if s := got.String(); s != want {
			t.Errorf("ParseRef(%q).String() = %q, want %q", tc.in, s, want)
		}
	}
	bad := []string{
		"", "@", "@1", "@draft", "x", testUUID + "@", testUUID + "@0", testUUID + "@01", testUUID + "@-1",
		testUUID + "@+1", testUUID + "@1.0", testUUID + "@1e3", testUUID + "@ 1", testUUID + "@1 ",
		testUUID + "@Draft", testUUID + "@DRAFT", testUUID + "@drafts", testUUID + "@draft@1", testUUID + "@1@2",
		testUUID + "@9007199254740993", testUUID + "@99999999999999999", testUUID + "@0x10",
		testUUID + "@١", // an Arabic-Indic digit
		" " + testUUID, testUUID + " ", "{" + testUUID + "}", "urn:uuid:" + testUUID,
		strings.ReplaceAll(testUUID, "-", ""), testUUID[:35], testUUID + "0", "3f2a9c1e_5b7d_4e8f_9a0b_1c2d3e4f5a6b",
		"3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6g", testUUID + "\x00", testUUID + "@1\x00",
	}
	for _, in := range bad {
		r, err := ParseRef(in)
		if err == nil {
			t.Errorf("ParseRef(%q) = %+v, want an error", in, r)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRef(%q) error %v does not wrap ErrInvalid", in, err)
		}
		if r != (Ref{}) {
			t.Errorf("ParseRef(%q) returned %+v with its error", in, r)
		}
	}
}

func TestRefString(t *testing.T) {
	id := uuid.MustParse(testUUID)
	for _, tc := range []struct {
		r    Ref
		want string
	}{
		{Latest(id), testUUID},
		{Ref{ID: id, Version: 7}, testUUID + "@7"},
		{Ref{ID: id, Draft: true}, testUUID + "@draft"},
		{Ref{ID: id, Draft: true, Version: 3}, testUUID + "@draft"}, // Draft wins
		{Ref{ID: id, Version: -2}, testUUID},                        // not a version
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "9": 9, "10": 10, "1234567890": 1234567890, "9007199254740992": 1 << 53, "1000000000000000": 1e15,
	} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "0", "00", "01", "-1", "+1", " 1", "1 ", "1_000", "1.5", "draft", "x", "9007199254740993",
		"9999999999999999", "10000000000000000", "99999999999999999999", "٣", "１",
	} {
		got, err := ParseVersion(in)
		if err == nil {
			t.Errorf("ParseVersion(%q) = %d, want an error", in, got)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseVersion(%q) error %v does not wrap ErrInvalid", in, err)
		}
	}
}

func TestParseUUID(t *testing.T) {
	want := uuid.MustParse(testUUID)
	for _, in := range []string{testUUID, strings.ToUpper(testUUID), "3F2A9C1E-5b7d-4E8F-9a0b-1C2D3E4F5A6B"} {
		got, err := ParseUUID(in)
		if err != nil || got != want {
			t.Errorf("ParseUUID(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{
		"", testUUID[1:], testUUID + "a", "{" + testUUID + "}", "urn:uuid:" + testUUID, strings.ReplaceAll(testUUID, "-", ""),
		"3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6z", "3f2a9c1e 5b7d 4e8f 9a0b 1c2d3e4f5a6b", "3f2a9c1e-5b7d-4e8f-9a0b1-c2d3e4f5a6b",
	} {
		if got, err := ParseUUID(in); err == nil || !errors.Is(err, ErrInvalid) || got != uuid.Nil {
			t.Errorf("ParseUUID(%q) = %s, %v; want uuid.Nil and ErrInvalid", in, got, err)
		}
	}
}

func TestKind(t *testing.T) {
	for _, k := range []Kind{KindCollection, KindUnit, KindAsset} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	for _, s := range []string{"", "Unit", "units", "blob", "kind(2)"} {
		if _, err := ParseKind(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseKind(%q) error %v, want ErrInvalid", s, err)
		}
	}
	if s := Kind(0).String(); s != "kind(0)" {
		t.Errorf("Kind(0).String() = %q", s)
	}
	if s := Kind(9).String(); s != "kind(9)" {
		t.Errorf("Kind(9).String() = %q", s)
	}
}

func TestBlobStateString(t *testing.T) {
	for s, want := range map[BlobState]string{BlobPending: "pending", BlobLive: "live", BlobDeleting: "deleting", 0: "state(0)", 7: "state(7)"} {
		if got := s.String(); got != want {
			t.Errorf("BlobState(%d).String() = %q, want %q", s, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	holder := uuid.MustParse(testUUID)
	ce := &ConflictError{Reason: "name taken", Holder: holder}
	wrapped := fmt.Errorf("index: create unit: %w", ce)
	if !errors.Is(wrapped, ErrConflict) {
		t.Error("a wrapped *ConflictError is not ErrConflict")
	}
	if errors.Is(wrapped, ErrNotFound) || errors.Is(wrapped, ErrInvalid) {
		t.Error("a *ConflictError is another sentinel too")
	}
	var got *ConflictError
	if !errors.As(wrapped, &got) || got.Holder != holder {
		t.Errorf("errors.As(*ConflictError) = %v", got)
	}
	if s := ce.Error(); !strings.Contains(s, "name taken") || !strings.Contains(s, testUUID) || !strings.HasPrefix(s, "index: conflict") {
		t.Errorf("ConflictError.Error() = %q", s)
	}
	if s := (&ConflictError{Reason: "sweep running"}).Error(); s != "index: conflict: sweep running" {
		t.Errorf("ConflictError without a holder = %q", s)
	}

	h := cas.Sum([]byte("x"))
	bm := fmt.Errorf("commit: %w", &BlobMissingError{Hash: h})
	if !errors.Is(bm, ErrBlobMissing) || errors.Is(bm, ErrNotFound) {
		t.Error("*BlobMissingError is not (only) ErrBlobMissing")
	}
	var gotBM *BlobMissingError
	if !errors.As(bm, &gotBM) || gotBM.Hash != h {
		t.Errorf("errors.As(*BlobMissingError) = %v", gotBM)
	}
	if s := gotBM.Error(); !strings.Contains(s, h.String()) {
		t.Errorf("BlobMissingError.Error() = %q", s)
	}
	// The sentinels are distinct and say they come from the index.
	sentinels := []error{ErrNotFound, ErrConflict, ErrInvalid, ErrBlobMissing, ErrBlobBusy, ErrUnavailable, ErrClosed}
	for i, a := range sentinels {
		if !strings.HasPrefix(a.Error(), "index: ") {
			t.Errorf("sentinel %q is not named with its package", a)
		}
		for j, b := range sentinels {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v is %v", a, b)
			}
		}
	}
}

func TestOptionsClock(t *testing.T) {
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	if got := (Options{Now: func() time.Time { return fixed }}).Clock()(); !got.Equal(fixed) {
		t.Errorf("Clock() with Now = %s", got)
	}
	before := time.Now()
	got := Options{}.Clock()()
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("Clock() without Now = %s, not the wall clock", got)
	}
}

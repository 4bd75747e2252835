package cas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/blockstore/blockstore/cas"
)

// blake3Vectors are from the BLAKE3 team's test_vectors/test_vectors.json
// (github.com/BLAKE3-team/BLAKE3): the first 32 bytes of the "hash" output
// for an input of input_len bytes, byte i being i % 251.
var blake3Vectors = []struct {
	inputLen int
	hash     string
}{
	{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
	{1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
	{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
	{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
	{2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
	{31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
	{102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
}

func vectorInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func TestBLAKE3Vectors(t *testing.T) {
	for _, v := range blake3Vectors {
		t.Run(fmt.Sprint(v.inputLen), func(t *testing.T) {
			in := vectorInput(v.inputLen)
			want := cas.MustParseHash(v.hash)
			if got := cas.Sum(in); got != want {
				t.Errorf("Sum: %s, want %s", got, want)
			}
			// Incrementally, in uneven pieces, as uploads hash.
			h := cas.NewHasher()
			for rest := in; len(rest) > 0; {
				n := min(len(rest), 1+len(rest)/3)
				_, _ = h.Write(rest[:n])
				rest = rest[n:]
			}
			if got := h.Sum(); got != want {
				t.Errorf("Hasher: %s, want %s", got, want)
			}
			h.Reset()
			_, _ = h.Write(in)
			if got := h.Sum(); got != want {
				t.Errorf("Hasher after Reset: %s, want %s", got, want)
			}
		})
	}
}

func TestParseHash(t *testing.T) {
	lower := "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	tests := []struct {
		in   string
		want string // "" when the input is invalid
	}{
		{lower, lower},
		{strings.ToUpper(lower), lower},
		{"AF1349b9F5F9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", lower},
		{strings.Repeat("0", 64), strings.Repeat("0", 64)},
		{strings.Repeat("f", 64), strings.Repeat("f", 64)},
		{"", ""},
		{lower[:63], ""},
		{lower + "0", ""},
		{" " + lower[1:], ""},
		{lower[:63] + " ", ""},
		{" " + lower, ""},
		{lower + "\n", ""},
		{"0x" + lower[2:], ""},
		{lower[:10] + "g" + lower[11:], ""},
		{lower[:10] + "-" + lower[11:], ""},
		{strings.Repeat("é", 32), ""},            // 64 bytes, not hex
		{lower[:62] + "\u00e9", ""},              // 64 bytes with a multi-byte rune
		{"sha256:" + lower[:57], ""},             // 64 bytes with a scheme
		{strings.Repeat("00", 31) + "0\x00", ""}, // NUL
		{strings.Repeat("a", 128), ""},           // twice too long
		{lower[:32], ""},                         // 32 hex digits: a 16-byte hash
		{"AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F326", ""}, // 63
	}
	for _, tc := range tests {
		got, err := cas.ParseHash(tc.in)
		if tc.want == "" {
			if !errors.Is(err, cas.ErrInvalidHash) {
				t.Errorf("ParseHash(%q): %v, %v; want ErrInvalidHash", tc.in, got, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseHash(%q): %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestHashText(t *testing.T) {
	h := cas.Sum([]byte("blockstore"))
	b, err := json.Marshal(map[string]cas.Hash{"hash": h})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"hash":"` + h.String() + `"}`; string(b) != want {
		t.Errorf("JSON: %s, want %s", b, want)
	}
	var back map[string]cas.Hash
	if err := json.Unmarshal([]byte(`{"hash":"`+strings.ToUpper(h.String())+`"}`), &back); err != nil || back["hash"] != h {
		t.Errorf("JSON round trip (upper case): %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"hash":"nope"}`), &back); !errors.Is(err, cas.ErrInvalidHash) {
		t.Errorf("JSON with a bad hash: %v, want ErrInvalidHash", err)
	}
	if (cas.Hash{}).IsZero() != true || h.IsZero() {
		t.Errorf("IsZero")
	}
}

// FuzzParseHash: whatever the input, ParseHash either fails with
// ErrInvalidHash or returns a hash whose String is the input in lower case,
// and String always parses back to the same hash.
func FuzzParseHash(f *testing.F) {
	f.Add("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
	f.Add("")
	f.Add(strings.Repeat("G", 64))
	f.Fuzz(func(t *testing.T, s string) {
		h, err := cas.ParseHash(s)
		if err != nil {
			if !errors.Is(err, cas.ErrInvalidHash) {
				t.Fatalf("ParseHash(%q): %v does not wrap ErrInvalidHash", s, err)
			}
			if h != (cas.Hash{}) {
				t.Fatalf("ParseHash(%q) failed but returned %v", s, h)
			}
			return
		}
		if h.String() != strings.ToLower(s) {
			t.Fatalf("ParseHash(%q).String() = %s", s, h)
		}
		back, err := cas.ParseHash(h.String())
		if err != nil || back != h {
			t.Fatalf("round trip of %s: %v, %v", h, back, err)
		}
		var u cas.Hash
		if err := u.UnmarshalText([]byte(s)); err != nil || u != h {
			t.Fatalf("UnmarshalText(%q): %v, %v", s, u, err)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 20} {
		data := vectorInput(size)
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			h := cas.NewHasher()
			for i := 0; i < b.N; i++ {
				h.Reset()
				// 1 MiB writes, as Upload.ReadFrom does.
				for off := 0; off < size; off += 1 << 20 {
					_, _ = h.Write(data[off : off+1<<20])
				}
				_ = h.Sum()
			}
		})
	}
}

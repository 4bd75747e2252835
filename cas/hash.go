package cas

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/zeebo/blake3"
)

// HashSize is the length of a BLAKE3-256 digest in bytes.
const HashSize = 32

// Hash is the BLAKE3-256 digest of a blob's bytes: the blob's only name.
type Hash [HashSize]byte

// ErrInvalidHash is wrapped by every error ParseHash returns.
var ErrInvalidHash = errors.New("cas: invalid hash")

// ParseHash parses 64 hex digits, in either case. Anything else, including
// surrounding white space, is an error wrapping ErrInvalidHash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrInvalidHash, 2*HashSize, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return h, fmt.Errorf("%w: character %d is not a hex digit", ErrInvalidHash, i)
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: %v", ErrInvalidHash, err)
	}
	return h, nil
}

// MustParseHash is ParseHash for constants in tests; it panics on error.
func MustParseHash(s string) Hash {
	h, err := ParseHash(s)
	if err != nil {
		panic(err)
	}
	return h
}

// String formats the hash as 64 lower-case hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler (JSON uses it).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseHash's rules.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// IsZero reports whether h is the zero value (which names no blob in practice).
func (h Hash) IsZero() bool { return h == Hash{} }

// Sum returns the hash of b.
func Sum(b []byte) Hash { return Hash(blake3.Sum256(b)) }

// Hasher computes a Hash incrementally; it is an io.Writer.
type Hasher struct{ h *blake3.Hasher }

// NewHasher returns a Hasher over no bytes.
func NewHasher() *Hasher { return &Hasher{h: blake3.New()} }

// Write adds p to the hashed bytes; it never fails.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum returns the hash of the bytes written so far.
func (h *Hasher) Sum() Hash {
	var out Hash
	h.h.Sum(out[:0])
	return out
}

// Reset forgets the bytes written so far.
func (h *Hasher) Reset() { h.h.Reset() }

var _ hash.Hash = (*blake3.Hasher)(nil)

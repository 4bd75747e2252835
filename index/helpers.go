package index

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

// Cursors are opaque to clients: base64url of a one-byte tag and a fixed
// layout. Entity lists continue after (created_at, uuid); history lists after
// a version number.
const (
	cursorEntity  = 'e'
	cursorVersion = 'v'
)

// EncodeEntityCursor returns the cursor that continues an entity list after
// the entity created at created with this id.
func EncodeEntityCursor(created time.Time, id uuid.UUID) string {
	b := make([]byte, 1+8+16)
	b[0] = cursorEntity
	binary.BigEndian.PutUint64(b[1:], uint64(created.UnixNano()))
	copy(b[9:], id[:])
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeEntityCursor parses an entity-list cursor; errors wrap ErrInvalid.
func DecodeEntityCursor(s string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 25 || b[0] != cursorEntity {
		return time.Time{}, uuid.Nil, fmt.Errorf("%w: cursor does not parse", ErrInvalid)
	}
	var id uuid.UUID
	copy(id[:], b[9:])
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[1:]))).UTC(), id, nil
}

// EncodeVersionCursor returns the cursor that continues a history list
// (newest first) after version v.
func EncodeVersionCursor(v int64) string {
	b := make([]byte, 1+8)
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(v))
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeVersionCursor parses a history-list cursor; errors wrap ErrInvalid.
func DecodeVersionCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 9 || b[0] != cursorVersion {
		return 0, fmt.Errorf("%w: cursor does not parse", ErrInvalid)
	}
	v := int64(binary.BigEndian.Uint64(b[1:]))
	if v <= 0 {
		return 0, fmt.Errorf("%w: cursor does not parse", ErrInvalid)
	}
	return v, nil
}

// PageLimit checks opt.Limit and returns the page size to use.
func PageLimit(opt ListOptions) (int, error) {
	switch {
	case opt.Limit == 0:
		return DefaultLimit, nil
	case opt.Limit < 0 || opt.Limit > MaxLimit:
		return 0, fmt.Errorf("%w: limit must be between 1 and %d", ErrInvalid, MaxLimit)
	}
	return opt.Limit, nil
}

// NormalizeLinks returns links without repeats of the same (target, version),
// the first kept, in the order given. It never returns nil.
func NormalizeLinks(links []Link) []Link {
	out := make([]Link, 0, len(links))
	type key struct {
		t uuid.UUID
		v int64
	}
	seen := make(map[key]bool, len(links))
	for _, l := range links {
		k := key{l.Target, l.Version}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, l)
	}
	return out
}

// LinkSetID names a normalized link set by its content, so that versions with
// the same links share one stored set. The empty set has the ID of no bytes.
func LinkSetID(links []Link) cas.Hash {
	h := cas.NewHasher()
	var b [1 + 16 + 8]byte
	for _, l := range links {
		b[0] = byte(l.Kind)
		copy(b[1:], l.Target[:])
		binary.BigEndian.PutUint64(b[17:], uint64(l.Version))
		h.Write(b[:])
	}
	return h.Sum()
}

// SameLinks reports whether two link lists are equal, order included.
func SameLinks(a, b []Link) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Reaches reports whether any of from reaches to by following edges
// (breadth first; each unit visited once). Backends use it for the cycle
// check: committing links from X to units T closes a cycle when Reaches(T, X).
func Reaches(from []uuid.UUID, to uuid.UUID, edges func(uuid.UUID) ([]uuid.UUID, error)) (bool, error) {
	seen := make(map[uuid.UUID]bool, len(from))
	queue := append([]uuid.UUID(nil), from...)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == to {
			return true, nil
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		next, err := edges(n)
		if err != nil {
			return false, err
		}
		queue = append(queue, next...)
	}
	return false, nil
}

// NewTicket returns a random, non-zero Ticket that fits in 63 bits (a
// PostgreSQL bigint).
func NewTicket() Ticket {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		if t := Ticket(binary.BigEndian.Uint64(b[:]) >> 1); t != 0 {
			return t
		}
	}
}

// MaxTextBytes bounds a name, a media type or a collection field.
const MaxTextBytes = 4096

// CheckText rejects text that an engine cannot store exactly: invalid UTF-8,
// NUL characters (PostgreSQL's text holds neither) and text longer than
// MaxTextBytes. Both engines and the API check with it, so both answer alike.
// Errors wrap ErrInvalid and name the field.
func CheckText(field, s string) error {
	switch {
	case len(s) > MaxTextBytes:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, field, MaxTextBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL character", ErrInvalid, field)
	}
	return nil
}

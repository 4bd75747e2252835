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

package castest

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"

	"github.com/blockstore/blockstore/cas"
)

// contentBlock is the period of Content's base pattern.
const contentBlock = 1 << 20

// Content is deterministic pseudo-random bytes of any length, generated on
// the fly so that a test of a 256 MiB blob holds 1 MiB of it in memory. The
// bytes of each 1 MiB block are a pattern drawn from the seed, with the
// block's number stamped in its first 8 bytes, so that no two blocks (and no
// two seeds) are alike and a read from the wrong offset is noticed.
type Content struct {
	seed uint64
	size int64
	off  int64
	base []byte
}

// NewContent returns size bytes of content drawn from seed, positioned at 0.
func NewContent(seed uint64, size int64) *Content {
	base := make([]byte, contentBlock)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for i := 0; i < len(base); i += 8 {
		binary.LittleEndian.PutUint64(base[i:], rng.Uint64())
	}
	return &Content{seed: seed, size: size, base: base}
}

// Size is the content's length.
func (c *Content) Size() int64 { return c.size }

// Read implements io.Reader.
func (c *Content) Read(p []byte) (int, error) {
	n, err := c.ReadAt(p, c.off)
	c.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt implements io.ReaderAt.
func (c *Content) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("castest: negative offset")
	}
	if off >= c.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := c.size - off; int64(want) > rest {
		want = int(rest)
	}
	n := 0
	for n < want {
		pos := off + int64(n)
		block, in := pos/contentBlock, int(pos%contentBlock)
		m := copy(p[n:want], c.base[in:])
		if in < 8 {
			var stamp [8]byte
			binary.LittleEndian.PutUint64(stamp[:], uint64(block)^c.seed)
			copy(p[n:n+m], stamp[in:])
		}
		n += m
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Seek implements io.Seeker for Read.
func (c *Content) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.off
	case io.SeekEnd:
		offset += c.size
	default:
		return 0, errors.New("castest: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("castest: negative position")
	}
	c.off = offset
	return offset, nil
}

// Bytes returns all of the content; for small sizes.
func (c *Content) Bytes() []byte {
	b := make([]byte, c.size)
	_, _ = c.ReadAt(b, 0)
	return b
}

// Hash returns the content's hash, streaming it.
func (c *Content) Hash() cas.Hash {
	h := cas.NewHasher()
	r := io.NewSectionReader(c, 0, c.size)
	buf := make([]byte, contentBlock)
	_, _ = io.CopyBuffer(h, r, buf)
	return h.Sum()
}

package pebbleindex

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Values are a compact binary encoding: a format byte, then fixed-width
// fields and varints in a fixed order, strings as a uvarint length and the
// bytes. BenchmarkCodec compares it with JSON.

// errCorrupt is wrapped by every error a value that does not decode gives.
var errCorrupt = errors.New("pebbleindex: corrupt record")

const formatV1 byte = 1

// entityRec is the record of an entity under e|uuid: what the writer needs
// without reading versions (numbering, names, the edges of the cycle check,
// the GC flag) and what orphan tracking needs.
type entityRec struct {
	Kind          index.Kind
	Collection    uuid.UUID // units and assets
	Created       int64     // the entity's creation: its first version, draft included
	Latest        int64     // latest published version, 0 when none
	LatestCreated int64
	LatestGC      bool
	LatestName    string
	LatestLinks   cas.Hash // units: the link set of the latest version
	HasDraft      bool
	DraftCreated  int64
	DraftGC       bool
	DraftName     string
	DraftLinks    cas.Hash
	EverLinked    bool  // assets: some stored unit version once linked it
	LastUnlinked  int64 // assets: when a version that linked it last went away, 0 never
}

const (
	flagLatestGC = 1 << iota
	flagHasDraft
	flagDraftGC
	flagEverLinked
)

func (e *entityRec) encode() []byte {
	var flags byte
	if e.LatestGC {
		flags |= flagLatestGC
	}
	if e.HasDraft {
		flags |= flagHasDraft
	}
	if e.DraftGC {
		flags |= flagDraftGC
	}
	if e.EverLinked {
		flags |= flagEverLinked
	}
	b := make([]byte, 0, 64+len(e.LatestName)+len(e.DraftName)+2*cas.HashSize)
	b = append(b, formatV1, byte(e.Kind), flags)
	b = append(b, e.Collection[:]...)
	b = binary.AppendVarint(b, e.Created)
	b = binary.AppendUvarint(b, uint64(e.Latest))
	b = binary.AppendVarint(b, e.LatestCreated)
	b = appendString(b, e.LatestName)
	b = binary.AppendVarint(b, e.DraftCreated)
	b = appendString(b, e.DraftName)
	b = binary.AppendVarint(b, e.LastUnlinked)
	if e.Kind == index.KindUnit {
		b = append(b, e.LatestLinks[:]...)
		b = append(b, e.DraftLinks[:]...)
	}
	return b
}

func decodeEntity(b []byte) (entityRec, error) {
	d := decoder{b: b}
	var e entityRec
	if d.byte() != formatV1 {
		return e, fmt.Errorf("%w: entity format", errCorrupt)
	}
	e.Kind = index.Kind(d.byte())
	flags := d.byte()
	e.LatestGC = flags&flagLatestGC != 0
	e.HasDraft = flags&flagHasDraft != 0
	e.DraftGC = flags&flagDraftGC != 0
	e.EverLinked = flags&flagEverLinked != 0
	e.Collection = d.uuid()
	e.Created = d.varint()
	e.Latest = int64(d.uvarint())
	e.LatestCreated = d.varint()
	e.LatestName = d.string()
	e.DraftCreated = d.varint()
	e.DraftName = d.string()
	e.LastUnlinked = d.varint()
	if e.Kind == index.KindUnit {
		e.LatestLinks = d.hash()
		e.DraftLinks = d.hash()
	}
	return e, d.done("entity")
}

// versionRec is one version of any kind under v|uuid|version. Fields a kind
// does not use stay zero.
type versionRec struct {
	Created    int64
	Superseded int64 // created_at of the next published version, 0 while latest (or a draft)
	GC         bool
	Hash       cas.Hash // units and assets
	Size       int64
	Links      cas.Hash // units: link set id
	Name       string   // every kind (a collection's name too)
	MediaType  string   // assets
	// Collections only.
	Description, Owner, Author, License string
}

func (v *versionRec) encode() []byte {
	var flags byte
	if v.GC {
		flags = 1
	}
	n := 32 + 2*cas.HashSize + len(v.Name) + len(v.MediaType) + len(v.Description) + len(v.Owner) + len(v.Author) + len(v.License)
	b := make([]byte, 0, n)
	b = append(b, formatV1, flags)
	b = binary.AppendVarint(b, v.Created)
	b = binary.AppendVarint(b, v.Superseded)
	b = append(b, v.Hash[:]...)
	b = binary.AppendVarint(b, v.Size)
	b = append(b, v.Links[:]...)
	b = appendString(b, v.Name)
	b = appendString(b, v.MediaType)
	b = appendString(b, v.Description)
	b = appendString(b, v.Owner)
	b = appendString(b, v.Author)
	b = appendString(b, v.License)
	return b
}

func decodeVersion(b []byte) (versionRec, error) {
	d := decoder{b: b}
	var v versionRec
	if d.byte() != formatV1 {
		return v, fmt.Errorf("%w: version format", errCorrupt)
	}
	v.GC = d.byte()&1 != 0
	v.Created = d.varint()
	v.Superseded = d.varint()
	v.Hash = d.hash()
	v.Size = d.varint()
	v.Links = d.hash()
	v.Name = d.string()
	v.MediaType = d.string()
	v.Description = d.string()
	v.Owner = d.string()
	v.Author = d.string()
	v.License = d.string()
	return v, d.done("version")
}

// linkSet is a stored link set under l|set: how many stored versions use it,
// and its links in order.
type linkSet struct {
	Refs  uint64
	Links []index.Link
}

func (s *linkSet) encode() []byte {
	b := make([]byte, 0, 8+binary.MaxVarintLen64+len(s.Links)*(1+sizeUUID+2))
	b = appendU64(b, s.Refs)
	b = binary.AppendUvarint(b, uint64(len(s.Links)))
	for _, l := range s.Links {
		b = append(b, byte(l.Kind))
		b = append(b, l.Target[:]...)
		b = binary.AppendUvarint(b, uint64(l.Version))
	}
	return b
}

func decodeLinkSet(b []byte) (linkSet, error) {
	d := decoder{b: b}
	var s linkSet
	s.Refs = d.u64()
	n := d.uvarint()
	if n > uint64(len(b)) {
		return s, fmt.Errorf("%w: link set of %d links in %d bytes", errCorrupt, n, len(b))
	}
	s.Links = make([]index.Link, 0, n)
	for range n {
		var l index.Link
		l.Kind = index.Kind(d.byte())
		l.Target = d.uuid()
		l.Version = int64(d.uvarint())
		s.Links = append(s.Links, l)
	}
	return s, d.done("link set")
}

// blobRow is a registry row under b|hash (the hash is the key).
// blobFormatTicket is the blob row format with the registration's ticket
// after the times; formatV1 rows have none (ticket 0). blobFormatClaim
// adds, after the ticket, the claim of a deleting row: its wall-clock time
// and the sweep that holds it (the delete fence of package gc).
const (
	blobFormatTicket = 2
	blobFormatClaim  = 3
)

func encodeBlob(b index.Blob, ticket index.Ticket) []byte {
	out := make([]byte, 0, 2+5*binary.MaxVarintLen64+len(b.ClaimedBy))
	format := byte(blobFormatTicket)
	if b.State == index.BlobDeleting {
		format = blobFormatClaim
	}
	state := byte(b.State)
	if b.Inline {
		state |= blobInlineFlag
	}
	out = append(out, format, state)
	out = binary.AppendVarint(out, b.Size)
	out = binary.AppendVarint(out, b.CreatedAt.UnixNano())
	out = binary.AppendVarint(out, b.LeasedAt.UnixNano())
	out = binary.AppendUvarint(out, uint64(ticket))
	if format == blobFormatClaim {
		var at int64
		if !b.ClaimedAt.IsZero() {
			at = b.ClaimedAt.UnixNano()
		}
		out = binary.AppendVarint(out, at)
		out = binary.AppendUvarint(out, uint64(len(b.ClaimedBy)))
		out = append(out, b.ClaimedBy...)
	}
	return out
}

func decodeBlob(h cas.Hash, b []byte) (index.Blob, error) {
	out, _, err := decodeBlobTicket(h, b)
	return out, err
}

func decodeBlobTicket(h cas.Hash, b []byte) (index.Blob, index.Ticket, error) {
	d := decoder{b: b}
	format := d.byte()
	if format != formatV1 && format != blobFormatTicket && format != blobFormatClaim {
		return index.Blob{}, 0, fmt.Errorf("%w: blob format", errCorrupt)
	}
	state := d.byte()
	out := index.Blob{Hash: h, State: index.BlobState(state &^ blobInlineFlag), Inline: state&blobInlineFlag != 0}
	out.Size = d.varint()
	out.CreatedAt = fromNS(d.varint())
	out.LeasedAt = fromNS(d.varint())
	var ticket index.Ticket
	if format >= blobFormatTicket {
		ticket = index.Ticket(d.uvarint())
	}
	if format == blobFormatClaim {
		if at := d.varint(); at != 0 {
			out.ClaimedAt = fromNS(at)
		}
		out.ClaimedBy = d.string()
	}
	return out, ticket, d.done("blob")
}

func encodeIdempotency(r index.IdempotencyRecord) []byte {
	b := make([]byte, 0, 1+cas.HashSize+2*binary.MaxVarintLen64+len(r.Body))
	b = append(b, formatV1)
	b = append(b, r.Fingerprint[:]...)
	b = binary.AppendVarint(b, int64(r.Status))
	b = binary.AppendVarint(b, r.ExpiresAt.UnixNano())
	return append(b, r.Body...)
}

func decodeIdempotency(k string, b []byte) (index.IdempotencyRecord, error) {
	d := decoder{b: b}
	if d.byte() != formatV1 {
		return index.IdempotencyRecord{}, fmt.Errorf("%w: idempotency format", errCorrupt)
	}
	r := index.IdempotencyRecord{Key: k}
	r.Fingerprint = d.hash()
	r.Status = int(d.varint())
	r.ExpiresAt = fromNS(d.varint())
	r.Body = d.rest()
	return r, d.done("idempotency record")
}

func encodeRun(r index.GCRun) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(r.Report))
	b = append(b, formatV1)
	b = binary.AppendVarint(b, r.StartedAt.UnixNano())
	return append(b, r.Report...)
}

func decodeRun(id string, b []byte) (index.GCRun, error) {
	d := decoder{b: b}
	if d.byte() != formatV1 {
		return index.GCRun{}, fmt.Errorf("%w: gc run format", errCorrupt)
	}
	r := index.GCRun{ID: id}
	r.StartedAt = fromNS(d.varint())
	r.Report = d.rest()
	return r, d.done("gc run")
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads the fields of a value in order; the first short or bad field
// makes every later read return zero and done report the error.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || n < 0 || len(d.b) < n {
		d.bad = true
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte() byte {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *decoder) u64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *decoder) uuid() uuid.UUID {
	p := d.take(sizeUUID)
	if p == nil {
		return uuid.Nil
	}
	return readUUID(p)
}

func (d *decoder) hash() cas.Hash {
	p := d.take(cas.HashSize)
	if p == nil {
		return cas.Hash{}
	}
	return readHash(p)
}

func (d *decoder) varint() int64 {
	if d.bad {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	return string(d.take(int(n)))
}

// rest returns a copy of the remaining bytes (nil when there are none).
func (d *decoder) rest() []byte {
	if d.bad || len(d.b) == 0 {
		return nil
	}
	p := append([]byte(nil), d.b...)
	d.b = nil
	return p
}

func (d *decoder) done(what string) error {
	if d.bad || len(d.b) != 0 {
		return fmt.Errorf("%w: %s", errCorrupt, what)
	}
	return nil
}

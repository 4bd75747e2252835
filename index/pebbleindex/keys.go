package pebbleindex

import (
	"encoding/binary"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Key spaces: the first byte of every key. doc.go describes each one; 'f'
// (f|seq → change) is the change feed's, declared in changes.go, and 'y'
// (y|hash → inline bytes) the inline blobs', declared in inline.go.
// TestKeySpacesDistinct holds them apart.
const (
	pMeta             byte = 'a' // a|name → value
	pBlob             byte = 'b' // b|hash → blob row
	pCollection       byte = 'c' // c|created|uuid → ∅
	pDeleting         byte = 'd' // d|hash → ∅
	pEntity           byte = 'e' // e|uuid → entity record
	pRun              byte = 'g' // g|id → gc run
	pHashRef          byte = 'h' // h|hash|kind|uuid|version → ∅
	pIdem             byte = 'i' // i|key → idempotency record
	pIdemExpiry       byte = 'j' // j|expires|key → ∅
	pEdge             byte = 'k' // k|target|role|created|linker → pin, linker collection
	pLinkSet          byte = 'l' // l|set → refs, links
	pMember           byte = 'm' // m|collection|kind|created|uuid → published flag
	pName             byte = 'n' // n|collection|name → holder uuid
	pOrphan           byte = 'o' // o|last-unlinked|uuid → ∅
	pReverse          byte = 'r' // r|target|pin|set → ∅
	pRunTime          byte = 't' // t|started|id → ∅
	pVersion          byte = 'v' // v|uuid|version → version record
	pSuperseded       byte = 'x' // x|superseded|uuid|version → kind
	layoutKey              = "a" + "layout"
	layoutFormat           = "blockstore-pebbleindex/1"
	sizeUUID               = 16
	sizeTime               = 8
	sizeU64                = 8
	sizeEntityKey          = 1 + sizeUUID
	sizeVersionKey         = 1 + sizeUUID + sizeU64
	sizeListPosition       = sizeTime + sizeUUID // created|uuid at the end of list keys
	sizeHashRefPrefix      = 1 + cas.HashSize
)

// Edge roles in k keys: which version of the linker holds the link.
const (
	roleLatest byte = 1
	roleDraft  byte = 2
)

// appendTime appends a time in Unix nanoseconds so that byte order is time
// order, also before 1970: big-endian with the sign bit flipped.
func appendTime(b []byte, ns int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(ns)^(1<<63))
}

func readTime(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func readU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func readUUID(b []byte) uuid.UUID {
	var id uuid.UUID
	copy(id[:], b)
	return id
}

func readHash(b []byte) cas.Hash {
	var h cas.Hash
	copy(h[:], b)
	return h
}

func key(prefix byte, n int) []byte {
	b := make([]byte, 1, n)
	b[0] = prefix
	return b
}

func entityKey(id uuid.UUID) []byte {
	return append(key(pEntity, sizeEntityKey), id[:]...)
}

func versionPrefix(id uuid.UUID) []byte {
	return append(key(pVersion, sizeVersionKey), id[:]...)
}

// versionKey names version ver of id; the draft is version 0.
func versionKey(id uuid.UUID, ver int64) []byte {
	return appendU64(versionPrefix(id), uint64(ver))
}

func versionOfKey(k []byte) int64 {
	return int64(binary.BigEndian.Uint64(k[1+sizeUUID:]))
}

func collectionListKey(created int64, id uuid.UUID) []byte {
	return append(appendTime(key(pCollection, 1+sizeListPosition), created), id[:]...)
}

func memberPrefix(coll uuid.UUID) []byte {
	return append(key(pMember, 1+sizeUUID+1+sizeListPosition), coll[:]...)
}

func memberKindPrefix(coll uuid.UUID, kind index.Kind) []byte {
	return append(memberPrefix(coll), byte(kind))
}

func memberKey(coll uuid.UUID, kind index.Kind, created int64, id uuid.UUID) []byte {
	return append(appendTime(memberKindPrefix(coll, kind), created), id[:]...)
}

func nameKey(coll uuid.UUID, name string) []byte {
	return append(append(key(pName, 1+sizeUUID+len(name)), coll[:]...), name...)
}

func linkSetKey(set cas.Hash) []byte {
	return append(key(pLinkSet, 1+cas.HashSize), set[:]...)
}

func reversePrefix(target uuid.UUID) []byte {
	return append(key(pReverse, 1+sizeUUID+sizeU64+cas.HashSize), target[:]...)
}

// reversePinPrefix is the prefix of the link sets that link target pinned
// to version pin (0: unpinned).
func reversePinPrefix(target uuid.UUID, pin int64) []byte {
	return appendU64(reversePrefix(target), uint64(pin))
}

func reverseKey(target uuid.UUID, pin int64, set cas.Hash) []byte {
	return append(reversePinPrefix(target, pin), set[:]...)
}

func edgePrefix(target uuid.UUID) []byte {
	return append(key(pEdge, 1+sizeUUID+1+sizeListPosition), target[:]...)
}

func edgeRolePrefix(target uuid.UUID, role byte) []byte {
	return append(edgePrefix(target), role)
}

func edgeKey(target uuid.UUID, role byte, created int64, linker uuid.UUID) []byte {
	return append(appendTime(edgeRolePrefix(target, role), created), linker[:]...)
}

func hashRefPrefix(h cas.Hash) []byte {
	return append(key(pHashRef, sizeHashRefPrefix+1+sizeUUID+sizeU64), h[:]...)
}

func hashRefKey(h cas.Hash, kind index.Kind, id uuid.UUID, ver int64) []byte {
	return appendU64(append(append(hashRefPrefix(h), byte(kind)), id[:]...), uint64(ver))
}

func supersededKey(at int64, id uuid.UUID, ver int64) []byte {
	return appendU64(append(appendTime(key(pSuperseded, 1+sizeTime+sizeUUID+sizeU64), at), id[:]...), uint64(ver))
}

func orphanKey(at int64, id uuid.UUID) []byte {
	return append(appendTime(key(pOrphan, 1+sizeTime+sizeUUID), at), id[:]...)
}

func blobKey(h cas.Hash) []byte {
	return append(key(pBlob, 1+cas.HashSize), h[:]...)
}

func deletingKey(h cas.Hash) []byte {
	return append(key(pDeleting, 1+cas.HashSize), h[:]...)
}

func idemKey(k string) []byte {
	return append(key(pIdem, 1+len(k)), k...)
}

func idemExpiryKey(at int64, k string) []byte {
	return append(appendTime(key(pIdemExpiry, 1+sizeTime+len(k)), at), k...)
}

func runKey(id string) []byte {
	return append(key(pRun, 1+len(id)), id...)
}

func runTimeKey(at int64, id string) []byte {
	return append(appendTime(key(pRunTime, 1+sizeTime+len(id)), at), id...)
}

// timeBound is the key prefix|t: the upper bound of the keys of a time-led
// key space that are strictly before t.
func timeBound(prefix byte, at int64) []byte {
	return appendTime(key(prefix, 1+sizeTime), at)
}

// prefixEnd returns the smallest key greater than every key that starts
// with p (nil when there is none: p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// after returns the smallest key greater than k.
func after(k []byte) []byte {
	return append(append(make([]byte, 0, len(k)+1), k...), 0)
}

// listPosition reads the created|uuid suffix of a list key.
func listPosition(k []byte) (int64, uuid.UUID) {
	n := len(k) - sizeListPosition
	return readTime(k[n:]), readUUID(k[n+sizeTime:])
}

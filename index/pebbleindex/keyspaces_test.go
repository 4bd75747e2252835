package pebbleindex

import "testing"

// TestKeySpacesDistinct fails when two key spaces share their first byte:
// a scan of one would then read the other's records (the change feed and
// the inline blobs once both took 'f').
func TestKeySpacesDistinct(t *testing.T) {
	spaces := map[string]byte{
		"meta": pMeta, "blob": pBlob, "collection": pCollection, "deleting": pDeleting,
		"entity": pEntity, "change": pChange, "run": pRun, "hashref": pHashRef,
		"idem": pIdem, "idem expiry": pIdemExpiry, "edge": pEdge, "link set": pLinkSet,
		"member": pMember, "name": pName, "orphan": pOrphan, "reverse": pReverse,
		"run time": pRunTime, "version": pVersion, "superseded": pSuperseded, "inline": pInline,
	}
	seen := map[byte]string{}
	for name, p := range spaces {
		if other, ok := seen[p]; ok {
			t.Errorf("key spaces %s and %s share the prefix %q", name, other, p)
		}
		seen[p] = name
	}
}

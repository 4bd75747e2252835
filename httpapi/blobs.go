package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/cas"
)

// Headers of hash-addressed bytes: they never change.
const immutable = "public, max-age=31536000, immutable"

func etag(h cas.Hash) string { return `"` + h.String() + `"` }

// hashParam parses {hash}. The static route POST /blobs/missing shares its
// position: other methods on it are 405, not a malformed hash.
func hashParam(w http.ResponseWriter, p httprouter.Params) (cas.Hash, error) {
	if p.ByName("hash") == "missing" {
		w.Header().Set("Allow", "OPTIONS, POST")
		return cas.Hash{}, fmt.Errorf("%w: /api/v1/blobs/missing answers POST", errMethodNotAllowed)
	}
	h, err := cas.ParseHash(p.ByName("hash"))
	if err != nil {
		return h, badRequest("malformed hash %q in the path: want 64 hex digits", p.ByName("hash"))
	}
	return h, nil
}

// headBlob answers whether a blob is stored, and renews its lease.
func (a *api) headBlob(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	h, err := hashParam(w, p)
	if err != nil {
		return err
	}
	b, err := a.svc.BlobInfo(r.Context(), h)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("ETag", etag(h))
	hd.Set("Cache-Control", immutable)
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("Content-Type", "application/octet-stream")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag(h)) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hd.Set("Content-Length", strconv.FormatInt(b.Size, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

// getBlob serves a blob's bytes, with Range, ETag and If-None-Match; or,
// asked with `Prefer: redirect` on a store that signs URLs, redirects to
// them once the registry says the blob is live.
func (a *api) getBlob(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	h, err := hashParam(w, p)
	if err != nil {
		return err
	}
	if wantsRedirect(r) && a.svc.Presigns() {
		u, err := a.svc.PresignBlob(r.Context(), h, "")
		if err != nil {
			return err
		}
		redirect(w, u)
		return nil
	}
	rd, err := a.svc.OpenBlob(r.Context(), h)
	if err != nil {
		return err
	}
	defer rd.Close()
	a.serveContent(w, r, content{
		hash:         h,
		mediaType:    "application/octet-stream",
		cacheControl: immutable,
		body:         rd,
	})
	return nil
}

// putBlob stores a body under the hash the client computed: 201 when new,
// 200 when it was stored already, 422 when the bytes hash otherwise.
func (a *api) putBlob(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	h, err := hashParam(w, p)
	if err != nil {
		return err
	}
	body, err := a.uploadBody(w, r)
	if err != nil {
		return err
	}
	info, created, err := a.svc.PutBlob(r.Context(), h, body, announced(r))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, r, status, blobJSON{Hash: info.Hash, Size: info.Size})
}

// postBlob stores a body under the hash it has.
func (a *api) postBlob(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	body, err := a.uploadBody(w, r)
	if err != nil {
		return err
	}
	// Always 201 (API.md), also when the bytes were stored already.
	ans, err := a.svc.AddBlob(r.Context(), body, announced(r), retryRequest(r, nil, func(info cas.Info, _ bool) (int, []byte, error) {
		b, err := encodeJSON(blobJSON{Hash: info.Hash, Size: info.Size})
		return http.StatusCreated, b, err
	}))
	if err != nil {
		return err
	}
	return writeAnswer(w, r, ans)
}

type blobJSON struct {
	Hash cas.Hash `json:"hash"`
	Size int64    `json:"size"`
}

// uploadBody is the body of a blob or asset upload, behind the server's
// upload limit (413 beyond).
func (a *api) uploadBody(w http.ResponseWriter, r *http.Request) (io.Reader, error) {
	max := a.opt.MaxUploadBytes
	if max <= 0 {
		return r.Body, nil
	}
	if r.ContentLength > max {
		return nil, tooLarge("body of %d bytes is over the upload limit of %d", r.ContentLength, max)
	}
	return http.MaxBytesReader(w, r.Body, max), nil
}

// announced is the size of the request's body its Content-Length gives, or
// 0 when it gives none (a chunked body): the blob store sizes its buffers
// by it, and net/http ends the body there (a body that stops short fails
// the read with io.ErrUnexpectedEOF).
func announced(r *http.Request) int64 {
	return max(r.ContentLength, 0)
}

// missingBlobs answers which of the hashes asked are not stored, renewing
// the lease of those that are.
func (a *api) missingBlobs(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var in struct {
		Hashes *[]string `json:"hashes"`
	}
	if _, err := decodeJSON(r, a.opt.MaxJSONBytes, false, &in); err != nil {
		return err
	}
	if in.Hashes == nil {
		return badRequest(`"hashes" is required`)
	}
	if n := len(*in.Hashes); n > a.opt.MaxMissingHashes {
		return tooLarge("%d hashes asked, at most %d at once", n, a.opt.MaxMissingHashes)
	}
	hs := make([]cas.Hash, len(*in.Hashes))
	for i, s := range *in.Hashes {
		h, err := cas.ParseHash(s)
		if err != nil {
			return badRequest("hashes[%d]: malformed hash %q: want 64 hex digits", i, s)
		}
		hs[i] = h
	}
	missing, err := a.svc.MissingBlobs(r.Context(), hs)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, struct {
		Missing []cas.Hash `json:"missing"`
	}{missing})
}

package apitest

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// testAssets: "Assets".
func testAssets(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	c := a.newCollection(t, J{"name": "assets"}).str("uuid")
	create := func(query string) string { return v1 + "/assets?collection=" + c + "&" + query }

	t.Run("streamed upload keeps the Content-Type", func(t *testing.T) {
		data := pattern("video", 700_000)
		r := a.post(t, create("name="+url.QueryEscape("static/intro.mp4")), chunked{bytes.NewReader(data)}, "Content-Type", "video/mp4")
		r.want(t, http.StatusCreated)
		o := r.obj(t)
		shape(t, "asset", o)
		eq(t, "version", o.ver(), 1)
		eq(t, "collection", o.str("collection"), c)
		eq(t, "name", o.str("name"), "static/intro.mp4")
		eq(t, "media_type", o.str("media_type"), "video/mp4")
		eq(t, "hash", o.str("hash"), hashOf(data))
		n, _ := o.int("size")
		eq(t, "size", n, int64(len(data)))
		gc, _ := o.bool("garbage_collect")
		eq(t, "garbage_collect when not given", gc, false)
		eq(t, "GET = POST answer", a.get(t, v1+"/assets/"+o.str("uuid")).want(t, http.StatusOK).obj(t).String(), o.String())
		if b := a.get(t, v1+"/blobs/"+hashOf(data)); b.expect(t, http.StatusOK) {
			eq(t, "the asset's blob", hashOf(b.body), hashOf(data))
		}

		o = a.post(t, create("name=subs.vtt&garbage_collect=true"), []byte("WEBVTT\n"), "Content-Type", "text/vtt; charset=utf-8").want(t, http.StatusCreated).obj(t)
		eq(t, "media_type with parameters", o.str("media_type"), "text/vtt; charset=utf-8")
		gc, _ = o.bool("garbage_collect")
		eq(t, "garbage_collect=true", gc, true)
		o = a.post(t, create("name=flag-false.bin&garbage_collect=false"), []byte("f"), "Content-Type", "application/octet-stream").want(t, http.StatusCreated).obj(t)
		gc, _ = o.bool("garbage_collect")
		eq(t, "garbage_collect=false", gc, false)
		a.get(t, v1+"/assets/"+randomUUID(20)).wantError(t, http.StatusNotFound)
	})

	t.Run("content", func(t *testing.T) {
		data := pattern("content", 50_000)
		o := a.newAsset(t, c, "static/content.pdf", "application/pdf", data)
		id := o.str("uuid")
		for _, p := range []string{"/content", "/versions/1/content"} {
			r := a.get(t, v1+"/assets/"+id+p)
			if !r.expect(t, http.StatusOK) {
				continue
			}
			eq(t, p+" bytes", hashOf(r.body), hashOf(data))
			eq(t, p+" Content-Type", r.header.Get("Content-Type"), "application/pdf")
			if r.header.Get("ETag") == "" {
				t.Errorf("%s has no ETag", p)
			}
			h := a.head(t, v1+"/assets/"+id+p)
			if h.expect(t, http.StatusOK) {
				eq(t, "HEAD "+p+" Content-Length", h.header.Get("Content-Length"), strconv.Itoa(len(data)))
				eq(t, "HEAD "+p+" Content-Type", h.header.Get("Content-Type"), "application/pdf")
			}
			checkRanges(t, a, v1+"/assets/"+id+p, data)
			if r := a.get(t, v1+"/assets/"+id+p, "Range", "bytes=0-9"); r.status == http.StatusPartialContent {
				eq(t, p+" Content-Type of a range", r.header.Get("Content-Type"), "application/pdf")
			}
		}
		vtt := a.newAsset(t, c, "static/content.vtt", "text/vtt; charset=utf-8", []byte("WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"))
		if r := a.get(t, v1+"/assets/"+vtt.str("uuid")+"/content"); r.expect(t, http.StatusOK) {
			eq(t, "Content-Type with parameters", r.header.Get("Content-Type"), "text/vtt; charset=utf-8")
		}
		a.get(t, v1+"/assets/"+id+"/versions/2/content").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/assets/"+randomUUID(21)+"/content").wantError(t, http.StatusNotFound)
	})

	t.Run("an asset over a stored blob", func(t *testing.T) {
		data := pattern("by hash", 12_345)
		h := a.putBlob(t, data)
		o := a.post(t, create("name=byhash.bin&hash="+h), nil).want(t, http.StatusCreated).obj(t)
		shape(t, "asset", o)
		eq(t, "media_type default", o.str("media_type"), "application/octet-stream")
		eq(t, "hash", o.str("hash"), h)
		n, _ := o.int("size")
		eq(t, "size", n, int64(len(data)))
		if r := a.get(t, v1+"/assets/"+o.str("uuid")+"/content"); r.expect(t, http.StatusOK) {
			eq(t, "content", hashOf(r.body), h)
			eq(t, "Content-Type", r.header.Get("Content-Type"), "application/octet-stream")
		}
		o = a.post(t, create("name=byhash.vtt&media_type="+url.QueryEscape("text/vtt; charset=utf-8")+"&hash="+strings.ToUpper(h)+"&garbage_collect=true"), nil).want(t, http.StatusCreated).obj(t)
		eq(t, "media_type given", o.str("media_type"), "text/vtt; charset=utf-8")
		eq(t, "hash given in upper case", o.str("hash"), h)
		gc, _ := o.bool("garbage_collect")
		eq(t, "garbage_collect", gc, true)

		before := a.snap(t, v1+"/collections/"+c+"/assets")
		absent := hashOf([]byte("never uploaded"))
		a.post(t, create("name=absent.bin&hash="+absent), nil).wantError(t, http.StatusNotFound)
		a.post(t, create("name=bad.bin&hash=xyz"), nil).wantError(t, http.StatusBadRequest)
		a.post(t, create("name=bad.bin&hash="+h[:63]), nil).wantError(t, http.StatusBadRequest)
		a.unchanged(t, before, "assets over absent or malformed hashes")
		eq(t, "assets named absent.bin", len(a.walk(t, v1+"/collections/"+c+"/assets?name=absent.bin", 0)), 0)
	})

	t.Run("versions", func(t *testing.T) {
		d1 := []byte("version one")
		first := a.newAsset(t, c, "static/versioned.png", "image/png", d1)
		id := first.str("uuid")
		vs := v1 + "/assets/" + id + "/versions"

		d2 := pattern("version two", 3000)
		second := a.post(t, vs, chunked{bytes.NewReader(d2)}, "Content-Type", "image/webp").want(t, http.StatusCreated).obj(t)
		shape(t, "asset", second)
		eq(t, "version", second.ver(), 2)
		eq(t, "uuid", second.str("uuid"), id)
		eq(t, "name kept", second.str("name"), "static/versioned.png")
		eq(t, "collection kept", second.str("collection"), c)
		eq(t, "media type from Content-Type", second.str("media_type"), "image/webp")
		eq(t, "hash", second.str("hash"), hashOf(d2))

		// The hash form with media_type left out keeps the latest media
		// type ("omitted is not empty").
		h3 := a.putBlob(t, []byte("version three"))
		third := a.post(t, vs+"?hash="+h3+"&garbage_collect=true", nil).want(t, http.StatusCreated).obj(t)
		eq(t, "version", third.ver(), 3)
		eq(t, "media_type kept", third.str("media_type"), "image/webp")
		eq(t, "hash", third.str("hash"), h3)
		gc, _ := third.bool("garbage_collect")
		eq(t, "garbage_collect", gc, true)

		fourth := a.post(t, vs+"?name="+url.QueryEscape("static/renamed.png"), []byte("version four"), "Content-Type", "image/png").want(t, http.StatusCreated).obj(t)
		eq(t, "version", fourth.ver(), 4)
		eq(t, "renamed", fourth.str("name"), "static/renamed.png")
		gc, _ = fourth.bool("garbage_collect")
		eq(t, "garbage_collect kept", gc, true)

		// Identical to the latest: 200 with the latest, nothing created.
		before := a.snap(t, vs, v1+"/assets/"+id)
		for _, r := range []*reply{
			a.post(t, vs, []byte("version four"), "Content-Type", "image/png"),
			a.post(t, vs+"?hash="+hashOf([]byte("version four")), nil),
			a.post(t, vs+"?hash="+hashOf([]byte("version four"))+"&media_type=image%2Fpng&garbage_collect=true&name="+url.QueryEscape("static/renamed.png"), nil),
		} {
			if r.expect(t, http.StatusOK) {
				eq(t, "answer to an identical version", r.obj(t).String(), fourth.String())
			}
		}
		a.unchanged(t, before, "identical asset versions")

		eqSlice(t, "versions, newest first", versions(a.walk(t, vs, 0)), []int64{4, 3, 2, 1})
		eq(t, "versions/1", a.get(t, vs+"/1").want(t, http.StatusOK).obj(t).String(), first.String())
		eq(t, "versions/2", a.get(t, vs+"/2").want(t, http.StatusOK).obj(t).String(), second.String())
		eq(t, "latest", a.get(t, v1+"/assets/"+id).want(t, http.StatusOK).obj(t).String(), fourth.String())
		if r := a.get(t, vs+"/1/content"); r.expect(t, http.StatusOK) {
			eq(t, "versions/1/content", string(r.body), string(d1))
			eq(t, "versions/1 media type", r.header.Get("Content-Type"), "image/png")
		}
		if r := a.get(t, vs+"/2/content"); r.expect(t, http.StatusOK) {
			eq(t, "versions/2 media type", r.header.Get("Content-Type"), "image/webp")
		}
		a.get(t, vs+"/5").wantError(t, http.StatusNotFound)

		before = a.snap(t, vs)
		a.post(t, vs+"?hash="+hashOf([]byte("not stored")), nil).wantError(t, http.StatusNotFound)
		a.post(t, vs+"?hash=nothex", nil).wantError(t, http.StatusBadRequest)
		a.post(t, vs+"?garbage_collect=perhaps", []byte("x"), "Content-Type", "text/plain").wantError(t, http.StatusBadRequest)
		a.unchanged(t, before, "refused asset versions")
		a.post(t, v1+"/assets/"+randomUUID(22)+"/versions", []byte("x"), "Content-Type", "text/plain").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/assets/"+randomUUID(22)+"/versions").wantError(t, http.StatusNotFound)
	})

	t.Run("drafts in both forms", func(t *testing.T) {
		o := a.newAsset(t, c, "static/drafted.png", "image/png", []byte("published"))
		id := o.str("uuid")
		a.post(t, v1+"/assets/"+id+"/draft/publish", nil).wantError(t, http.StatusNotFound)

		d := a.put(t, v1+"/assets/"+id+"/draft", chunked{strings.NewReader("draft bytes")}, "Content-Type", "image/gif").want(t, http.StatusOK).obj(t)
		shape(t, "asset", d)
		if !d.isNull("version") {
			t.Errorf("draft version = %v, want null", d["version"])
		}
		eq(t, "draft media type", d.str("media_type"), "image/gif")
		eq(t, "draft name kept", d.str("name"), "static/drafted.png")
		eq(t, "GET is still the published one", a.get(t, v1+"/assets/"+id).want(t, http.StatusOK).obj(t).String(), o.String())
		if r := a.get(t, v1+"/assets/"+id+"/content"); r.expect(t, http.StatusOK) {
			eq(t, "content is still the published one", string(r.body), "published")
		}
		eq(t, "versions/draft", a.get(t, v1+"/assets/"+id+"/versions/draft").want(t, http.StatusOK).obj(t).String(), d.String())
		if r := a.get(t, v1+"/assets/"+id+"/versions/draft/content"); r.expect(t, http.StatusOK) {
			eq(t, "draft content", string(r.body), "draft bytes")
			eq(t, "draft Content-Type", r.header.Get("Content-Type"), "image/gif")
		}

		// Replace it in the hash form. media_type left out keeps "the latest
		// version's value": API.md does not say whether a replaced draft
		// counts as that version, so either media type passes.
		h := a.putBlob(t, []byte("draft by hash"))
		d = a.put(t, v1+"/assets/"+id+"/draft?hash="+h+"&name="+url.QueryEscape("static/drafted-2.png"), nil).want(t, http.StatusOK).obj(t)
		eq(t, "replaced draft hash", d.str("hash"), h)
		eq(t, "replaced draft name", d.str("name"), "static/drafted-2.png")
		if mt := d.str("media_type"); mt != "image/png" && mt != "image/gif" {
			t.Errorf("replaced draft media type = %q, want the published image/png (or the draft's image/gif)", mt)
		}
		a.put(t, v1+"/assets/"+id+"/draft?hash="+hashOf([]byte("absent draft")), nil).wantError(t, http.StatusNotFound)
		eq(t, "draft after a refused replace", a.get(t, v1+"/assets/"+id+"/versions/draft").want(t, http.StatusOK).obj(t).str("hash"), h)

		p := a.post(t, v1+"/assets/"+id+"/draft/publish", nil).want(t, http.StatusCreated).obj(t)
		eq(t, "published version", p.ver(), 2)
		eq(t, "published hash", p.str("hash"), h)
		eq(t, "published name", p.str("name"), "static/drafted-2.png")
		a.get(t, v1+"/assets/"+id+"/versions/draft").wantError(t, http.StatusNotFound)
		a.post(t, v1+"/assets/"+id+"/draft/publish", nil).wantError(t, http.StatusNotFound)
		if r := a.get(t, v1+"/assets/"+id+"/content"); r.expect(t, http.StatusOK) {
			eq(t, "content after publish", string(r.body), "draft by hash")
		}

		a.put(t, v1+"/assets/"+id+"/draft", []byte("to be dropped"), "Content-Type", "text/plain").want(t, http.StatusOK)
		before := a.snap(t, v1+"/assets/"+id, v1+"/assets/"+id+"/versions")
		a.del(t, v1+"/assets/"+id+"/draft").expect(t, http.StatusNoContent)
		a.get(t, v1+"/assets/"+id+"/versions/draft").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/assets/"+id+"/versions/draft/content").wantError(t, http.StatusNotFound)
		a.post(t, v1+"/assets/"+id+"/draft/publish", nil).wantError(t, http.StatusNotFound)
		a.unchanged(t, before, "DELETE of an asset draft")

		missing := randomUUID(23)
		a.put(t, v1+"/assets/"+missing+"/draft", []byte("x"), "Content-Type", "text/plain").wantError(t, http.StatusNotFound)
		a.post(t, v1+"/assets/"+missing+"/draft/publish", nil).wantError(t, http.StatusNotFound)
		a.del(t, v1+"/assets/"+missing+"/draft").wantError(t, http.StatusNotFound)
	})

	t.Run("a JSON file is an asset like any other", func(t *testing.T) {
		js := []byte(`{"collection": "` + randomUUID(24) + `", "name": "evil", "olx": "<x/>", "refs": []}` + "\n")
		o := a.newAsset(t, c, "data/course.json", "application/json", js)
		eq(t, "hash of the JSON body", o.str("hash"), hashOf(js))
		eq(t, "media type", o.str("media_type"), "application/json")
		if r := a.get(t, v1+"/assets/"+o.str("uuid")+"/content"); r.expect(t, http.StatusOK) {
			eq(t, "JSON content byte for byte", string(r.body), string(js))
			eq(t, "Content-Type", r.header.Get("Content-Type"), "application/json")
		}
		js2 := []byte(`[1, 2, 3]`)
		v := a.post(t, v1+"/assets/"+o.str("uuid")+"/versions", js2, "Content-Type", "application/json").want(t, http.StatusCreated).obj(t)
		eq(t, "hash of the JSON version", v.str("hash"), hashOf(js2))
		d := a.put(t, v1+"/assets/"+o.str("uuid")+"/draft", []byte(`not json {`), "Content-Type", "application/json").want(t, http.StatusOK).obj(t)
		eq(t, "hash of a draft that is not JSON", d.str("hash"), hashOf([]byte(`not json {`)))
	})

	t.Run("delete", func(t *testing.T) {
		o := a.newAsset(t, c, "static/doomed.png", "image/png", []byte("doomed"))
		id := o.str("uuid")
		a.post(t, v1+"/assets/"+id+"/versions", []byte("doomed 2"), "Content-Type", "image/png").want(t, http.StatusCreated)
		w := a.newUnit(t, c, J{"olx": "<uses-asset/>", "links": []J{link(id, "asset", 1)}}).str("uuid")
		paths := []string{v1 + "/assets/" + id, v1 + "/assets/" + id + "/versions", v1 + "/collections/" + c + "/assets"}

		before := a.snap(t, paths...)
		a.del(t, v1+"/assets/"+id).wantError(t, http.StatusConflict)
		a.unchanged(t, before, "DELETE of an asset a latest version links")

		a.newUnitVersion(t, w, J{"olx": "<uses-nothing/>", "links": []J{}})
		a.put(t, v1+"/units/"+w+"/draft", J{"olx": "<draft-uses-asset/>", "links": []J{link(id, "", 0)}}).want(t, http.StatusOK)
		before = a.snap(t, paths...)
		a.del(t, v1+"/assets/"+id).wantError(t, http.StatusConflict)
		a.unchanged(t, before, "DELETE of an asset a draft links")

		a.del(t, v1+"/units/"+w+"/draft").want(t, http.StatusNoContent)
		a.del(t, v1+"/assets/"+id).expect(t, http.StatusNoContent)
		for _, p := range []string{"", "/versions", "/versions/1", "/versions/2", "/content", "/versions/1/content", "/linked-by"} {
			a.get(t, v1+"/assets/"+id+p).wantError(t, http.StatusNotFound)
		}
		a.post(t, v1+"/assets/"+id+"/versions", []byte("x"), "Content-Type", "text/plain").wantError(t, http.StatusNotFound)
		a.del(t, v1+"/assets/"+id).wantError(t, http.StatusNotFound)
		if contains(uuids(a.walk(t, v1+"/collections/"+c+"/assets", 0)), id) {
			t.Errorf("a deleted asset is still listed")
		}
		a.post(t, v1+"/units", J{"collection": c, "olx": "<late/>", "links": []J{link(id, "", 0)}}).wantError(t, http.StatusBadRequest)
		a.newAsset(t, c, "static/doomed.png", "image/png", []byte("reborn"))
		a.del(t, v1+"/assets/"+randomUUID(25)).wantError(t, http.StatusNotFound)
	})

	t.Run("rejected creates change nothing", func(t *testing.T) {
		a.newAsset(t, c, "static/exists.png", "image/png", []byte("exists"))
		before := a.snap(t, v1+"/collections/"+c+"/assets", v1+"/collections")
		a.post(t, v1+"/assets?collection="+randomUUID(26)+"&name=x.bin", []byte("x"), "Content-Type", "text/plain").wantError(t, http.StatusBadRequest, http.StatusNotFound)
		a.post(t, v1+"/assets?collection=nope&name=x.bin", []byte("x"), "Content-Type", "text/plain").wantError(t, http.StatusBadRequest)
		a.post(t, v1+"/assets?name=x.bin", []byte("x"), "Content-Type", "text/plain").wantError(t, http.StatusBadRequest, http.StatusNotFound)
		a.post(t, create("name=x.bin&garbage_collect=perhaps"), []byte("x"), "Content-Type", "text/plain").wantError(t, http.StatusBadRequest)
		r := a.post(t, create("name="+url.QueryEscape("static/exists.png")), []byte("x"), "Content-Type", "text/plain")
		r.wantError(t, http.StatusConflict)
		a.unchanged(t, before, "refused asset creates")
	})
}

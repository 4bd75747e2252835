package apitest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// testUnicode: names and OLX in Korean, emoji and other non-ASCII text
// round-trip byte for byte ("its bytes are stored exactly").
func testUnicode(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	fields := J{
		"name":        "한국어 강좌 🎓",
		"description": "물리학 입문 — emoji 👩‍💻🏳️‍🌈, combining é, RTL שלום, CJK 漢字",
		"owner":       "서울대학교",
		"author":      "김철수 🧑‍🏫",
		"license":     "CC-BY-4.0 ©",
	}
	coll := a.newCollection(t, fields)
	c := coll.str("uuid")

	t.Run("collection fields", func(t *testing.T) {
		g := a.get(t, v1+"/collections/"+c).want(t, http.StatusOK).obj(t)
		for k, v := range fields {
			eq(t, k, g.str(k), v.(string))
		}
		p := a.patch(t, v1+"/collections/"+c, J{"name": "강좌 🚀 v2"}).want(t, http.StatusOK).obj(t)
		eq(t, "patched name", p.str("name"), "강좌 🚀 v2")
		eq(t, "listed name", a.walk(t, v1+"/collections", 0)[0].str("name"), "강좌 🚀 v2")
		eq(t, "version 1 name", a.get(t, v1+"/collections/"+c+"/versions/1").want(t, http.StatusOK).obj(t).str("name"), "한국어 강좌 🎓")
	})

	olx := "<problem display_name=\"문제 1 🎯\">\r\n\t<p>안녕하세요, 世界! 👋🏽 e\u0301 \u2028 \ufeff</p>\n</problem>\n"
	name := "vertical/강의-1 🎓.xml"
	var unit object

	t.Run("unit name and OLX", func(t *testing.T) {
		unit = a.newUnit(t, c, J{"name": name, "olx": olx})
		eq(t, "name", unit.str("name"), name)
		eq(t, "hash of the UTF-8 bytes", unit.str("hash"), hashOf([]byte(olx)))
		n, _ := unit.int("size")
		eq(t, "size in bytes, not characters", n, int64(len(olx)))
		if r := a.get(t, v1+"/units/"+unit.str("uuid")+"/olx"); r.expect(t, http.StatusOK) {
			eq(t, "OLX byte for byte", string(r.body), olx)
		}
		if r := a.get(t, v1+"/units/"+unit.str("uuid")+"/versions/1/olx"); r.expect(t, http.StatusOK) {
			eq(t, "versions/1/olx byte for byte", string(r.body), olx)
		}
		byName := a.walk(t, v1+"/collections/"+c+"/units?name="+url.QueryEscape(name), 0)
		eqSlice(t, "units by a Korean name", uuids(byName), []string{unit.str("uuid")})
		// The path form of the escape (%20 for space) names it too.
		byName = a.walk(t, v1+"/collections/"+c+"/units?name="+url.PathEscape(name), 0)
		eqSlice(t, "units by a Korean name escaped with %20", uuids(byName), []string{unit.str("uuid")})
		r := a.post(t, v1+"/units", J{"collection": c, "name": name, "olx": "<dup/>"})
		if r.wantError(t, http.StatusConflict) && !strings.Contains(string(r.body), unit.str("uuid")) {
			t.Errorf("the 409 does not name the holder: %s", r)
		}
		o := a.post(t, v1+"/resolve", J{"refs": []string{unit.str("uuid")}, "include_olx": true}).want(t, http.StatusOK).obj(t)
		if items := o.objs("items"); len(items) == 1 {
			eq(t, "resolved OLX", items[0].str("olx"), olx)
			eq(t, "resolved name", items[0].str("name"), name)
		} else {
			t.Errorf("resolve: %v", o)
		}
	})

	t.Run("JSON escapes become UTF-8 bytes", func(t *testing.T) {
		body := `{"collection": "` + c + `", "name": "\uc774\ubaa8\uc9c0 \ud83c\udf89.xml", "olx": "<p>\ud55c\uad6d \ud83c\udf89 \u00e9</p>"}`
		o := a.post(t, v1+"/units", rawJSON(body)).want(t, http.StatusCreated).obj(t)
		eq(t, "name from escapes", o.str("name"), "이모지 🎉.xml")
		want := "<p>한국 🎉 é</p>"
		eq(t, "hash of the decoded OLX", o.str("hash"), hashOf([]byte(want)))
		if r := a.get(t, v1+"/units/"+o.str("uuid")+"/olx"); r.expect(t, http.StatusOK) {
			eq(t, "OLX from escapes", string(r.body), want)
		}
	})

	t.Run("draft and new version", func(t *testing.T) {
		if unit == nil {
			t.Skip("no unit")
		}
		u := unit.str("uuid")
		d := a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<초안 🙂/>", "name": "초안.xml"}).want(t, http.StatusOK).obj(t)
		eq(t, "draft name", d.str("name"), "초안.xml")
		if r := a.get(t, v1+"/units/"+u+"/versions/draft/olx"); r.expect(t, http.StatusOK) {
			eq(t, "draft OLX", string(r.body), "<초안 🙂/>")
		}
		p := a.post(t, v1+"/units/"+u+"/draft/publish", nil).want(t, http.StatusCreated).obj(t)
		eq(t, "published name", p.str("name"), "초안.xml")
	})

	t.Run("asset names and bytes", func(t *testing.T) {
		aname := "static/영상 🎬 (1).mp4"
		data := []byte("자막 파일 — 🎞️ subtitles\n")
		as := a.newAsset(t, c, aname, "text/plain; charset=utf-8", data)
		eq(t, "asset name", as.str("name"), aname)
		if r := a.get(t, v1+"/assets/"+as.str("uuid")+"/content"); r.expect(t, http.StatusOK) {
			eq(t, "asset bytes", string(r.body), string(data))
		}
		eqSlice(t, "assets by name", uuids(a.walk(t, v1+"/collections/"+c+"/assets?name="+url.QueryEscape(aname), 0)), []string{as.str("uuid")})
		r := a.post(t, v1+"/units", J{"collection": c, "name": aname, "olx": "<dup/>"})
		if r.wantError(t, http.StatusConflict) && !strings.Contains(string(r.body), as.str("uuid")) {
			t.Errorf("the 409 does not name the holder: %s", r)
		}
		v := a.post(t, v1+"/assets/"+as.str("uuid")+"/versions?name="+url.QueryEscape("static/새 이름 ✨.mp4"), []byte("v2"), "Content-Type", "text/plain").want(t, http.StatusCreated).obj(t)
		eq(t, "renamed asset", v.str("name"), "static/새 이름 ✨.mp4")
	})

	t.Run("names differ by their bytes", func(t *testing.T) {
		// Names with the same letters in a different case, width or a
		// different emoji modifier are different names.
		for _, n := range []string{"Straße.xml", "STRASSE.xml", "strasse.xml", "ｓｔｒａｓｓｅ.xml", "👍.xml", "👍🏽.xml"} {
			a.newUnit(t, c, J{"name": n, "olx": "<n/>"})
		}
	})
}

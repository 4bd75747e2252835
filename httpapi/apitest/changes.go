package apitest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testChanges: "Changes". Every committed write is one change, in order;
// replays and identical versions are none; next_cursor is always present;
// wait long-polls; collection filters; malformed cursors are 400. (410
// needs a server whose history was pruned: the deployments' own tests.)
func testChanges(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)

	// feed follows the feed from after to its end and returns the changes
	// and the last next_cursor.
	feed := func(t *testing.T, after, query string) ([]object, string) {
		t.Helper()
		var out []object
		for i := 0; i < 1000; i++ {
			target := v1 + "/changes?limit=3"
			if after != "" {
				target += "&after=" + url.QueryEscape(after)
			}
			if query != "" {
				target += "&" + query
			}
			o := a.get(t, target).want(t, http.StatusOK).obj(t)
			items, ok := o.list("items")
			if !ok {
				t.Fatalf("GET %s: items is not an array: %s", target, o)
			}
			next := o.str("next_cursor")
			if next == "" {
				t.Fatalf("GET %s: no next_cursor: %s", target, o)
			}
			out = append(out, o.objs("items")...)
			after = next
			if len(items) == 0 {
				return out, after
			}
		}
		t.Fatal("the feed does not end")
		return nil, ""
	}
	// summary is "event kind uuid version" per change.
	summary := func(cs []object) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			v := "null"
			if n, ok := c.int("version"); ok {
				v = fmt.Sprint(n)
			}
			out[i] = strings.Join([]string{c.str("event"), c.str("kind"), c.str("uuid"), v}, " ")
		}
		return out
	}
	ch := func(event, kind, id string, version int64) string {
		v := "null"
		if version > 0 {
			v = fmt.Sprint(version)
		}
		return strings.Join([]string{event, kind, id, v}, " ")
	}

	_, start := feed(t, "", "")
	c := a.newCollection(t, J{"name": "followed"}).str("uuid")
	other := a.newCollection(t, J{"name": "other"}).str("uuid")
	u := a.newUnit(t, c, J{"name": "u.xml", "olx": "<u1/>"}).str("uuid")
	a.post(t, v1+"/units/"+u+"/versions", J{"olx": "<u2/>"}, "Idempotency-Key", "v2").want(t, http.StatusCreated)
	a.post(t, v1+"/units/"+u+"/versions", J{"olx": "<u2/>"}, "Idempotency-Key", "v2").want(t, http.StatusCreated)
	a.post(t, v1+"/units/"+u+"/versions", J{"olx": "<u2/>"}).want(t, http.StatusOK)
	a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<u3/>"}).want(t, http.StatusOK)
	a.post(t, v1+"/units/"+u+"/draft/publish", nil).want(t, http.StatusOK, http.StatusCreated)
	a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<u4/>"}).want(t, http.StatusOK)
	a.del(t, v1+"/units/"+u+"/draft").want(t, http.StatusNoContent)
	x := a.newUnit(t, other, J{"name": "x.xml", "olx": "<x/>"}).str("uuid")
	a.patch(t, v1+"/collections/"+c, J{"description": "now described"}).want(t, http.StatusOK, http.StatusCreated)
	as := a.newAsset(t, c, "a.txt", "text/plain", []byte("asset bytes")).str("uuid")
	a.del(t, v1+"/assets/"+as).want(t, http.StatusNoContent)
	a.del(t, v1+"/units/"+x).want(t, http.StatusNoContent)

	want := []string{
		ch("created", "collection", c, 1),
		ch("created", "collection", other, 1),
		ch("created", "unit", u, 1),
		ch("published", "unit", u, 2),
		ch("draft_saved", "unit", u, 0),
		ch("published", "unit", u, 3),
		ch("draft_saved", "unit", u, 0),
		ch("draft_deleted", "unit", u, 0),
		ch("created", "unit", x, 1),
		ch("updated", "collection", c, 2),
		ch("created", "asset", as, 1),
		ch("deleted", "asset", as, 0),
		ch("deleted", "unit", x, 0),
	}

	t.Run("every write once, in order", func(t *testing.T) {
		got, _ := feed(t, start, "")
		eqSlice(t, "changes", summary(got), want)
		for _, o := range got {
			if !isUTC3339(o.str("at")) || o.str("cursor") == "" {
				t.Errorf("change %s: want a cursor and an RFC 3339 UTC time", o)
			}
			wantColl := c
			switch o.str("uuid") {
			case other, x:
				wantColl = other
			}
			eq(t, "collection of "+o.str("uuid"), o.str("collection"), wantColl)
		}
		// From the start (no after): the same.
		all, _ := feed(t, "", "")
		eqSlice(t, "changes from the start", summary(all), want)
		// From any change's cursor: the rest.
		for i, o := range got {
			rest, _ := feed(t, o.str("cursor"), "")
			eqSlice(t, fmt.Sprintf("after change %d", i), summary(rest), want[i+1:])
		}
	})

	t.Run("collection filter", func(t *testing.T) {
		got, _ := feed(t, "", "collection="+other)
		eqSlice(t, "changes of one collection", summary(got), []string{
			ch("created", "collection", other, 1), ch("created", "unit", x, 1), ch("deleted", "unit", x, 0),
		})
		a.get(t, v1+"/changes?collection=not-a-uuid").wantError(t, http.StatusBadRequest)
	})

	t.Run("head", func(t *testing.T) {
		h := a.get(t, v1+"/changes/head").want(t, http.StatusOK).obj(t).str("cursor")
		if h == "" {
			t.Fatal("no head cursor")
		}
		got, _ := feed(t, h, "")
		eqSlice(t, "after the head", summary(got), nil)
		a.head(t, v1+"/changes/head").want(t, http.StatusOK)
		a.head(t, v1+"/changes").want(t, http.StatusOK)
	})

	t.Run("refusals", func(t *testing.T) {
		for _, q := range []string{"after=garbage", "after=%00", "limit=0", "limit=1001", "limit=x",
			"wait=forever", "wait=-1s", "wait=61s"} {
			a.get(t, v1+"/changes?"+q).wantError(t, http.StatusBadRequest)
		}
		// A valid limit of 1 pages one change at a time.
		o := a.get(t, v1+"/changes?limit=1").want(t, http.StatusOK).obj(t)
		eq(t, "items with limit=1", len(o.objs("items")), 1)
	})

	t.Run("wait", func(t *testing.T) {
		_, end := feed(t, "", "")
		began := time.Now()
		o := a.get(t, v1+"/changes?wait=300ms&after="+url.QueryEscape(end)).want(t, http.StatusOK).obj(t)
		if len(o.objs("items")) != 0 || time.Since(began) < 300*time.Millisecond {
			t.Errorf("wait=300ms with nothing new: %d items after %v", len(o.objs("items")), time.Since(began))
		}
		if o.str("next_cursor") == "" {
			t.Error("an empty page without next_cursor")
		}
		done := make(chan *reply, 1)
		go func() {
			r, err := a.send(http.MethodGet, v1+"/changes?wait=30s&after="+url.QueryEscape(end), nil)
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
		// The long-poll is under way or about to be: either way it sees
		// this commit (before: answered at once; after: woken by it).
		nc := a.newCollection(t, J{"name": "wakes"}).str("uuid")
		select {
		case r := <-done:
			if r == nil {
				return
			}
			items := r.want(t, http.StatusOK).obj(t).objs("items")
			eqSlice(t, "woken by", summary(items), []string{ch("created", "collection", nc, 1)})
		case <-time.After(25 * time.Second):
			t.Fatal("a long-poll did not answer within 25s of a commit")
		}
	})
}

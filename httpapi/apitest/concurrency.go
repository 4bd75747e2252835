package apitest

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
)

const (
	writers           = 8
	versionsPerWriter = 5
)

// testConcurrency: writers racing on one entity. Version numbers stay
// gap-free and unique, a name is taken once, a draft is published once.
func testConcurrency(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	c := a.newCollection(t, J{"name": "concurrency"}).str("uuid")

	// race runs f(i) for i in [0, n) at once and returns the replies; a
	// transport error fails the test.
	race := func(t *testing.T, n int, f func(i int) (*reply, error)) []*reply {
		t.Helper()
		out := make([]*reply, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out[i], errs[i] = f(i)
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	statuses := func(rs []*reply) map[int]int {
		m := map[int]int{}
		for _, r := range rs {
			m[r.status]++
		}
		return m
	}

	t.Run("concurrent new versions of one unit are gap-free", func(t *testing.T) {
		u := a.newUnit(t, c, J{"name": "hot.xml", "olx": "<hot v=\"0\"/>"}).str("uuid")
		olxOf := map[int64]string{1: "<hot v=\"0\"/>"}
		var mu sync.Mutex
		rs := race(t, writers, func(w int) (*reply, error) {
			// Each writer sends its versions one after the other.
			var last *reply
			for k := 0; k < versionsPerWriter; k++ {
				olx := fmt.Sprintf("<hot writer=\"%d\" k=\"%d\"/>", w, k)
				r, err := a.send(http.MethodPost, v1+"/units/"+u+"/versions", J{"olx": olx})
				if err != nil {
					return nil, err
				}
				if r.status != http.StatusCreated {
					return r, nil
				}
				o, err := decode(r.body)
				if err != nil {
					return nil, fmt.Errorf("writer %d: %w: %s", w, err, r)
				}
				n, ok := object(o.(map[string]any)).int("version")
				if !ok {
					return nil, fmt.Errorf("writer %d: no version: %s", w, r)
				}
				mu.Lock()
				if prev, dup := olxOf[n]; dup {
					mu.Unlock()
					return nil, fmt.Errorf("version %d given twice: to %q and %q", n, prev, olx)
				}
				olxOf[n] = olx
				mu.Unlock()
				last = r
			}
			return last, nil
		})
		for _, r := range rs {
			r.expect(t, http.StatusCreated)
		}
		total := writers*versionsPerWriter + 1
		var got []int
		for n := range olxOf {
			got = append(got, int(n))
		}
		sort.Ints(got)
		for i, n := range got {
			if n != i+1 {
				t.Fatalf("versions given %v, want 1..%d without gaps", got, total)
			}
		}
		eq(t, "versions given", len(got), total)
		listed := versions(a.walk(t, v1+"/units/"+u+"/versions", 1000))
		eq(t, "versions listed", len(listed), total)
		for i, n := range listed {
			if n != int64(total-i) {
				t.Fatalf("versions listed %v, want %d..1", listed, total)
			}
		}
		eq(t, "latest", a.get(t, v1+"/units/"+u).want(t, http.StatusOK).obj(t).ver(), int64(total))
		// Every version holds the bytes its writer sent.
		for n, olx := range olxOf {
			if r := a.get(t, v1+"/units/"+u+"/versions/"+strconv.FormatInt(n, 10)+"/olx"); r.expect(t, http.StatusOK) {
				eq(t, "olx of version "+strconv.FormatInt(n, 10), string(r.body), olx)
			}
		}
	})

	t.Run("concurrent new versions of one asset are gap-free", func(t *testing.T) {
		as := a.newAsset(t, c, "hot.bin", "application/octet-stream", []byte("hot 0")).str("uuid")
		rs := race(t, writers, func(w int) (*reply, error) {
			return a.send(http.MethodPost, v1+"/assets/"+as+"/versions", []byte(fmt.Sprintf("hot %d", w+1)), "Content-Type", "text/plain")
		})
		seen := map[int64]bool{}
		for _, r := range rs {
			if r.expect(t, http.StatusCreated) {
				seen[r.obj(t).ver()] = true
			}
		}
		for n := int64(2); n <= writers+1; n++ {
			if !seen[n] {
				t.Errorf("no writer got version %d: %v", n, seen)
			}
		}
		eq(t, "asset versions", len(a.walk(t, v1+"/assets/"+as+"/versions", 1000)), writers+1)
	})

	t.Run("identical concurrent versions create one", func(t *testing.T) {
		u := a.newUnit(t, c, J{"olx": "<same v=\"1\"/>"}).str("uuid")
		rs := race(t, writers, func(int) (*reply, error) {
			return a.send(http.MethodPost, v1+"/units/"+u+"/versions", J{"olx": "<same v=\"2\"/>"})
		})
		st := statuses(rs)
		eq(t, "201 answers", st[http.StatusCreated], 1)
		eq(t, "200 answers", st[http.StatusOK], writers-1)
		for _, r := range rs {
			if r.status == http.StatusOK || r.status == http.StatusCreated {
				eq(t, "version answered", r.obj(t).ver(), 2)
			}
		}
		eq(t, "versions", len(a.walk(t, v1+"/units/"+u+"/versions", 0)), 2)
	})

	t.Run("a name is taken once", func(t *testing.T) {
		rs := race(t, writers, func(i int) (*reply, error) {
			if i%2 == 0 {
				return a.send(http.MethodPost, v1+"/units", J{"collection": c, "name": "contested.xml", "olx": fmt.Sprintf("<c%d/>", i)})
			}
			return a.send(http.MethodPost, v1+"/assets?collection="+c+"&name=contested.xml", []byte(fmt.Sprintf("c%d", i)), "Content-Type", "text/plain")
		})
		st := statuses(rs)
		eq(t, "201 answers", st[http.StatusCreated], 1)
		eq(t, "409 answers", st[http.StatusConflict], writers-1)
		n := len(a.walk(t, v1+"/collections/"+c+"/units?name=contested.xml", 0)) + len(a.walk(t, v1+"/collections/"+c+"/assets?name=contested.xml", 0))
		eq(t, "entities named contested.xml", n, 1)
	})

	t.Run("a draft is published once", func(t *testing.T) {
		u := a.newUnit(t, c, J{"olx": "<pub v=\"1\"/>"}).str("uuid")
		a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<pub v=\"2\"/>"}).want(t, http.StatusOK)
		rs := race(t, writers, func(int) (*reply, error) {
			return a.send(http.MethodPost, v1+"/units/"+u+"/draft/publish", nil)
		})
		st := statuses(rs)
		eq(t, "201 answers", st[http.StatusCreated], 1)
		eq(t, "404 answers", st[http.StatusNotFound], writers-1)
		eqSlice(t, "versions", versions(a.walk(t, v1+"/units/"+u+"/versions", 0)), []int64{2, 1})
	})

	t.Run("concurrent uploads of one blob", func(t *testing.T) {
		data := pattern("contested blob", 256<<10)
		h := hashOf(data)
		rs := race(t, writers, func(int) (*reply, error) {
			return a.send(http.MethodPut, v1+"/blobs/"+h, data)
		})
		st := statuses(rs)
		if st[http.StatusCreated]+st[http.StatusOK] != writers || st[http.StatusCreated] < 1 {
			t.Errorf("answers %v, want 201 or 200 each, at least one 201", st)
		}
		if r := a.get(t, v1+"/blobs/"+h); r.expect(t, http.StatusOK) {
			eq(t, "contested blob", hashOf(r.body), h)
		}
	})

	t.Run("concurrent keyed retries create once", func(t *testing.T) {
		before := len(a.walk(t, v1+"/collections", 0))
		rs := race(t, writers, func(int) (*reply, error) {
			return a.send(http.MethodPost, v1+"/collections", J{"name": "keyed"}, "Idempotency-Key", "race-key")
		})
		var id string
		for _, r := range rs {
			// A retry that overlaps the first may be told to wait (409) or
			// get the first answer; it never creates a second collection.
			if r.status == http.StatusConflict {
				r.wantError(t, http.StatusConflict)
				continue
			}
			if !r.expect(t, http.StatusCreated) {
				continue
			}
			got := r.obj(t).str("uuid")
			if id != "" && got != id {
				t.Errorf("one key created %s and %s", id, got)
			}
			id = got
		}
		eq(t, "collections", len(a.walk(t, v1+"/collections", 0)), before+1)
	})
}

package apitest

import (
	"bytes"
	"net/http"
	"testing"
)

// testOperations: "Operations", and the shape of the GC endpoints (which a
// later issue builds; only their answers' shape is held here).
func testOperations(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)

	t.Run("healthz and readyz", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			a.get(t, p).expect(t, http.StatusOK)
			r := a.head(t, p)
			r.expect(t, http.StatusOK)
			eq(t, "HEAD "+p+" body", len(r.body), 0)
		}
	})

	t.Run("metrics in the Prometheus text format", func(t *testing.T) {
		r := a.get(t, "/metrics")
		if !r.expect(t, http.StatusOK) {
			return
		}
		eq(t, "metrics media type", mediaType(r.header.Get("Content-Type")), "text/plain")
		if !bytes.Contains(r.body, []byte("# TYPE ")) {
			t.Errorf("metrics hold no # TYPE line: %.300s", r.body)
		}
		a.head(t, "/metrics").expect(t, http.StatusOK)
	})

	t.Run("gc answers a report or a JSON error", func(t *testing.T) {
		keep := a.putBlob(t, []byte("gc must keep this blob"))
		r := a.post(t, v1+"/gc", J{"dry_run": true})
		switch r.status {
		case http.StatusOK:
			o := r.obj(t)
			for _, f := range []string{"id", "dry_run", "started_at", "finished_at", "versions_deleted", "assets_deleted", "blobs_deleted", "bytes_freed", "blobs_kept", "phases"} {
				if !o.has(f) {
					t.Errorf("gc report lacks %q: %s", f, r)
				}
			}
			if dry, _ := o.bool("dry_run"); !dry {
				t.Errorf("a dry run's report says dry_run %v", o["dry_run"])
			}
			if id := o.str("id"); id != "" {
				g := a.get(t, v1+"/gc/runs/"+escapePath(id))
				if g.status == http.StatusOK {
					eq(t, "report by id", g.obj(t).str("id"), id)
				} else {
					g.errorShape(t)
				}
			}
		case http.StatusAccepted:
			if r.obj(t).str("id") == "" {
				t.Errorf(`a 202 from gc needs {"id"}: %s`, r)
			}
		default:
			if r.status < 400 {
				t.Errorf("gc answered %d: %s", r.status, r)
			} else {
				r.errorShape(t)
			}
		}
		g := a.get(t, v1+"/gc/runs")
		if g.status == http.StatusOK {
			g.page(t)
		} else {
			g.errorShape(t)
		}
		a.get(t, v1+"/blobs/"+keep).expect(t, http.StatusOK)
		if r := a.post(t, v1+"/gc", rawJSON(`{"dry_run": "yes"}`)); r.status >= 400 {
			r.errorShape(t)
		} else {
			t.Errorf(`gc accepted {"dry_run": "yes"}: %s`, r)
		}
	})
}

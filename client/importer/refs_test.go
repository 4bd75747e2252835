package importer

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExtractRefs(t *testing.T) {
	for _, tc := range []struct {
		name string
		olx  string
		want Refs
	}{
		{
			name: "children in order, once each",
			olx:  `<vertical display_name="x"><html url_name="a"/><problem url_name="b"></problem><html url_name="a"/></vertical>`,
			want: Refs{Root: "vertical", Children: []ChildRef{{"html", "a"}, {"problem", "b"}}},
		},
		{
			name: "filename and static in attributes and text",
			olx:  `<html filename="intro" display_name="I">&lt;img src=&quot;/static/img/a%20b.png&quot;/&gt; and /static/c.pdf</html>`,
			want: Refs{Root: "html", Files: []FileRef{{"html", "intro"}}, Static: []string{"static/img/a b.png", "static/c.pdf"}},
		},
		{
			name: "CDATA, query strings, fragments, CSS url()",
			olx:  `<problem><![CDATA[<a href="/static/h.txt?x=1">h</a><div style="background:url(/static/bg.jpg)">]]><p>see /static/s.srt#t</p></problem>`,
			want: Refs{Root: "problem", Static: []string{"static/h.txt", "static/bg.jpg", "static/s.srt"}},
		},
		{
			name: "transcript src",
			olx:  `<video handout="/static/hand.pdf"><transcript language="en" src="en.srt"/><transcript src="https://x/y.srt"/></video>`,
			want: Refs{Root: "video", Static: []string{"static/hand.pdf", "static/en.srt"}},
		},
		{
			name: "not ours: other hosts, escapes, comments",
			olx:  `<html><a href="https://cdn.example/static/x.png"/><a href="/static/../etc/passwd"/><a href="/static//abs"/><!-- <html url_name="hidden"/> /static/c.png --></html>`,
			want: Refs{Root: "html"},
		},
		{
			name: "unsafe url_names are dropped",
			olx:  `<vertical><html url_name="../x"/><html url_name="a/b"/><html url_name=".."/><html url_name="ok"/></vertical>`,
			want: Refs{Root: "vertical", Children: []ChildRef{{"html", "ok"}}},
		},
		{
			name: "broken XML: tokens until the error, then a scan",
			olx:  `<vertical><html url_name="a"/><problem url_name="b" <<< /static/late.png "/static/later.png"`,
			want: Refs{Root: "vertical", Children: []ChildRef{{"html", "a"}}, Static: []string{"static/late.png", "static/later.png"}},
		},
		{
			name: "HTML entities and unclosed tags are tolerated",
			olx:  `<html><p>caf&eacute;<br><img src="/static/i.png"></p><chapter url_name="c"/></html>`,
			want: Refs{Root: "html", Children: []ChildRef{{"chapter", "c"}}, Static: []string{"static/i.png"}},
		},
		{
			name: "namespaces use the local name",
			olx:  `<x:vertical xmlns:x="urn:x"><x:html url_name="n"/></x:vertical>`,
			want: Refs{Root: "vertical", Children: []ChildRef{{"html", "n"}}},
		},
		{name: "empty", olx: ``, want: Refs{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ExtractRefs([]byte(tc.olx))
			if !reflect.DeepEqual(normRefs(got), normRefs(tc.want)) {
				t.Errorf("ExtractRefs(%q)\n got %+v\nwant %+v", tc.olx, got, tc.want)
			}
		})
	}
}

func normRefs(r Refs) Refs {
	if len(r.Children) == 0 {
		r.Children = nil
	}
	if len(r.Files) == 0 {
		r.Files = nil
	}
	if len(r.Static) == 0 {
		r.Static = nil
	}
	return r
}

func TestExtractStaticRefs(t *testing.T) {
	got := ExtractStaticRefs([]byte(`<img src="/static/a.png"><img srcset="/static/b.png 2x, /static/c.png 3x">/static/a.png`))
	want := []string{"static/a.png", "static/b.png", "static/c.png"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestExtractRefsIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("<vertical>")
	for i := 0; i < maxRefs+10; i++ {
		b.WriteString(`<html url_name="n`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(`"/>/static/f`)
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(" ")
	}
	r := ExtractRefs([]byte(b.String()))
	if n := len(r.Children) + len(r.Files) + len(r.Static); n > maxRefs {
		t.Errorf("%d references, more than %d", n, maxRefs)
	}
}

// FuzzExtractRefs: any bytes give references that are safe to join to a
// directory, each once, the same on every call, and never a panic.
func FuzzExtractRefs(f *testing.F) {
	_ = filepath.WalkDir("testdata/olx-course", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".xml") || strings.HasSuffix(p, ".html")) {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := ExtractRefs(data)
		if !reflect.DeepEqual(r, ExtractRefs(data)) {
			t.Fatal("not deterministic")
		}
		if n := len(r.Children) + len(r.Files) + len(r.Static); n > maxRefs {
			t.Fatalf("%d references", n)
		}
		seen := map[string]bool{}
		for _, c := range r.Children {
			if !validSegment(c.Tag) || !validSegment(c.URLName) {
				t.Fatalf("unsafe child %+v", c)
			}
			p := c.Tag + "/" + c.URLName + ".xml"
			if !fs.ValidPath(p) || seen["c"+p] {
				t.Fatalf("child path %q invalid or repeated", p)
			}
			seen["c"+p] = true
		}
		for _, fr := range r.Files {
			if !validSegment(fr.Tag) || !validSegment(fr.Filename) || seen["f"+fr.Tag+"/"+fr.Filename] {
				t.Fatalf("unsafe or repeated file %+v", fr)
			}
			seen["f"+fr.Tag+"/"+fr.Filename] = true
		}
		for _, s := range r.Static {
			if !strings.HasPrefix(s, "static/") || !fs.ValidPath(s) || seen["s"+s] {
				t.Fatalf("static path %q invalid or repeated", s)
			}
			if _, err := filepath.Localize(s); err != nil {
				t.Fatalf("static path %q: %v", s, err)
			}
			seen["s"+s] = true
		}
		for _, s := range ExtractStaticRefs(data) {
			if !strings.HasPrefix(s, "static/") || !fs.ValidPath(s) {
				t.Fatalf("static path %q invalid", s)
			}
		}
	})
}

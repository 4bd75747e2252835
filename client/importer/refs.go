package importer

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// Refs are the references one OLX document (or HTML file) makes, in the
// order they first appear, each once.
type Refs struct {
	// Root is the tag of the document's first element ("" when none).
	Root string
	// Children are elements with a url_name: a block that may live in its
	// own file, <Tag>/<URLName>.xml.
	Children []ChildRef
	// Files are elements with a filename attribute (<html filename="x"/>):
	// the block's content lives in <Tag>/<Filename>.html or <Tag>/<Filename>.
	Files []FileRef
	// Static are paths under static/ ("static/img/a.png"), from "/static/…"
	// references in attributes and text and from <transcript src="…">.
	Static []string
}

// ChildRef is an element that names a block by url_name.
type ChildRef struct{ Tag, URLName string }

// FileRef is an element that names its content file.
type FileRef struct{ Tag, Filename string }

// maxRefs bounds what one document may contribute (a hostile or broken file
// must not make the importer hold millions of references).
const maxRefs = 100000

type refSet struct {
	Refs
	seenChild  map[ChildRef]bool
	seenFile   map[FileRef]bool
	seenStatic map[string]bool
}

func newRefSet() *refSet {
	return &refSet{seenChild: map[ChildRef]bool{}, seenFile: map[FileRef]bool{}, seenStatic: map[string]bool{}}
}

func (s *refSet) full() bool {
	return len(s.Children)+len(s.Files)+len(s.Static) >= maxRefs
}

func (s *refSet) addChild(tag, name string) {
	if !validSegment(tag) || !validSegment(name) || s.full() {
		return
	}
	r := ChildRef{tag, name}
	if !s.seenChild[r] {
		s.seenChild[r] = true
		s.Children = append(s.Children, r)
	}
}

func (s *refSet) addFile(tag, name string) {
	if !validSegment(tag) || !validSegment(name) || s.full() {
		return
	}
	r := FileRef{tag, name}
	if !s.seenFile[r] {
		s.seenFile[r] = true
		s.Files = append(s.Files, r)
	}
}

// addStatic adds "static/"+rel when rel is a clean relative path.
func (s *refSet) addStatic(rel string) {
	if u, err := url.PathUnescape(rel); err == nil {
		rel = u
	}
	if rel == "" || !utf8.ValidString(rel) || strings.ContainsAny(rel, "\x00\\") || s.full() {
		return
	}
	if path.Clean(rel) != rel || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || strings.HasPrefix(rel, "/") {
		return
	}
	p := "static/" + rel
	if !s.seenStatic[p] {
		s.seenStatic[p] = true
		s.Static = append(s.Static, p)
	}
}

// validSegment reports whether s can be one path element of a name.
func validSegment(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 255 && utf8.ValidString(s) &&
		!strings.ContainsAny(s, "/\\\x00")
}

// staticMarker starts a reference to a course file.
const staticMarker = "/static/"

// scanStatic adds every "/static/…" reference in text: the marker at the
// start of text or after a character that cannot be part of a URL's host
// or path (so "https://cdn.example/static/x" is not one), up to a quote,
// white space, bracket or the start of a query or fragment.
func (s *refSet) scanStatic(text string) {
	for i := 0; i < len(text) && !s.full(); {
		j := strings.Index(text[i:], staticMarker)
		if j < 0 {
			return
		}
		j += i
		start := j + len(staticMarker)
		if j == 0 || strings.IndexByte("\"'( =>\n\t\r,;[{", text[j-1]) >= 0 {
			end := start
			for end < len(text) && strings.IndexByte("\"'<>()[]{} \t\r\n?#,;\\`", text[end]) < 0 {
				end++
			}
			s.addStatic(text[start:end])
			i = end
			continue
		}
		i = start
	}
}

// ExtractRefs finds the references of an OLX document: child blocks by
// url_name, content files by filename, and /static/ files. It tolerates
// broken XML: it reads tokens (HTML entities and unclosed HTML elements
// allowed) until the first error and scans the rest of the bytes for
// /static/ references. It never fails.
func ExtractRefs(data []byte) Refs {
	s := newRefSet()
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	offset := int64(0)
	for tokens := 0; tokens < 10*maxRefs && !s.full(); tokens++ {
		tok, err := d.RawToken()
		if err != nil {
			if err != io.EOF {
				// Whatever the tokenizer could not read may still name files.
				s.scanStatic(string(data[min(offset, int64(len(data))):]))
			}
			break
		}
		offset = d.InputOffset()
		switch t := tok.(type) {
		case xml.StartElement:
			tag := t.Name.Local
			if s.Root == "" {
				s.Root = tag
			}
			var urlName, filename, src string
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "url_name":
					urlName = a.Value
				case "filename":
					filename = a.Value
				case "src":
					src = a.Value
				}
				s.scanStatic(a.Value)
			}
			if urlName != "" {
				s.addChild(tag, urlName)
			}
			if filename != "" {
				s.addFile(tag, filename)
			}
			if tag == "transcript" && src != "" && !strings.Contains(src, ":") && !strings.HasPrefix(src, "/") {
				s.addStatic(src)
			}
		case xml.CharData:
			s.scanStatic(string(t))
		case xml.Comment:
			// A commented-out reference is not a reference.
		case xml.Directive, xml.ProcInst:
		}
	}
	return s.Refs
}

// ExtractStaticRefs finds the /static/ references of an HTML (or any text)
// file, without parsing it.
func ExtractStaticRefs(data []byte) []string {
	s := newRefSet()
	s.scanStatic(string(data))
	return s.Static
}

package importer

import (
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Layout says how a tree is imported.
type Layout string

const (
	// LayoutOLX: an Open edX OLX export (course.xml or library.xml at the
	// root): block files become units with links, everything else assets.
	LayoutOLX Layout = "olx"
	// LayoutPlain: every file is an asset.
	LayoutPlain Layout = "plain"
)

// Limits on files the importer reads whole.
const (
	// maxUnitSize: an OLX file larger than this is imported as an asset (a
	// unit's OLX travels in a JSON body, which the server caps at 16 MiB).
	maxUnitSize = 4 << 20
	// maxScanSize: an HTML file larger than this is not searched for
	// /static/ references.
	maxScanSize = 16 << 20
)

// file is one regular file of the tree to import.
type file struct {
	name string // slash-separated path relative to the root: the entity's name
	path string // path on disk
	size int64
	// unit: an OLX block file (a unit candidate; it becomes an asset when
	// its bytes are not UTF-8 or it is too large).
	unit bool
	// scan: read whole and search for references (units, and HTML content
	// files of blocks).
	scan      bool
	mediaType string
}

// tree is what a walk found.
type tree struct {
	layout Layout
	files  []*file
	byName map[string]*file
	// skipped are paths not imported, with the reason (not an error: a
	// symbolic link to a directory, a socket).
	skipped []string
	// errs are paths that could not be read.
	errs []error
}

// ErrBadInput is wrapped by errors about the tree being imported (an
// unreadable file, a symbolic link loop, a name that is not UTF-8).
var ErrBadInput = errors.New("importer: bad input")

// walkTree lists the regular files under root. It does not follow symbolic
// links to directories (so no loop can trap it); a symbolic link to a
// regular file is imported under the link's name; a dangling link or a link
// loop is an error for that path.
func walkTree(root string) (*tree, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrBadInput, root)
	}
	t := &tree{byName: map[string]*file{}}
	badf := func(p string, format string, args ...any) {
		t.errs = append(t.errs, fmt.Errorf("%w: %s: %s", ErrBadInput, p, fmt.Sprintf(format, args...)))
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			badf(p, "%v", unwrapPathError(err))
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			return nil
		}
		if !utf8.ValidString(name) {
			badf(p, "the file name is not valid UTF-8")
			return nil
		}
		mode := d.Type()
		var size int64
		switch {
		case mode.IsRegular():
			info, err := d.Info()
			if err != nil {
				badf(p, "%v", unwrapPathError(err))
				return nil
			}
			size = info.Size()
		case mode&fs.ModeSymlink != 0:
			info, err := os.Stat(p)
			switch {
			case errors.Is(err, syscall.ELOOP):
				badf(p, "symbolic link loop")
				return nil
			case errors.Is(err, fs.ErrNotExist):
				badf(p, "dangling symbolic link")
				return nil
			case err != nil:
				badf(p, "%v", unwrapPathError(err))
				return nil
			case info.IsDir():
				t.skipped = append(t.skipped, name+": symbolic link to a directory (not followed)")
				return nil
			case !info.Mode().IsRegular():
				t.skipped = append(t.skipped, name+": symbolic link to a "+modeName(info.Mode()))
				return nil
			}
			size = info.Size()
		default:
			t.skipped = append(t.skipped, name+": "+modeName(mode))
			return nil
		}
		f := &file{name: name, path: p, size: size, mediaType: mediaTypeOf(name)}
		t.files = append(t.files, f)
		t.byName[name] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("importer: walk %s: %w", root, err)
	}
	t.classify()
	return t, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func modeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (not imported)"
	case m&fs.ModeSocket != 0:
		return "socket (not imported)"
	case m&fs.ModeDevice != 0:
		return "device (not imported)"
	}
	return "special file (not imported)"
}

// classify decides the layout and marks units and files to scan. A tree is
// an OLX export when course.xml or library.xml is at its root; its block
// folders are the top-level folders (static/ aside) that hold .xml files
// directly.
func (t *tree) classify() {
	t.layout = LayoutPlain
	for _, root := range []string{"course.xml", "library.xml"} {
		if _, ok := t.byName[root]; ok {
			t.layout = LayoutOLX
		}
	}
	if t.layout != LayoutOLX {
		return
	}
	blockDirs := map[string]bool{}
	for _, f := range t.files {
		dir, base, ok := strings.Cut(f.name, "/")
		if ok && dir != "static" && !strings.Contains(base, "/") && strings.HasSuffix(base, ".xml") {
			blockDirs[dir] = true
		}
	}
	for _, f := range t.files {
		dir, base, nested := strings.Cut(f.name, "/")
		switch {
		case !nested && (f.name == "course.xml" || f.name == "library.xml"):
			f.unit = f.size <= maxUnitSize
		case nested && blockDirs[dir] && !strings.Contains(base, "/"):
			switch path.Ext(base) {
			case ".xml":
				f.unit = f.size <= maxUnitSize
			case ".html", ".htm":
				f.scan = f.size <= maxScanSize
			}
		}
		if f.unit {
			f.scan = true
		}
	}
}

// resolveRefs turns a block's references into the names of files of the
// tree, in order, each once, never self.
func (t *tree) resolveRefs(self string, r Refs) []string {
	var out []string
	seen := map[string]bool{self: true}
	add := func(name string) {
		if _, ok := t.byName[name]; ok && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, c := range r.Children {
		add(c.Tag + "/" + c.URLName + ".xml")
	}
	for _, f := range r.Files {
		if path.Ext(f.Filename) == "" {
			add(f.Tag + "/" + f.Filename + ".html")
		} else {
			add(f.Tag + "/" + f.Filename)
		}
	}
	for _, s := range r.Static {
		add(s)
	}
	return out
}

// totals returns the number of files and their bytes.
func (t *tree) totals() (files, bytes int64) {
	for _, f := range t.files {
		files++
		bytes += f.size
	}
	return files, bytes
}

// ordered returns the files in the order to hash them: block files and the
// HTML they name first (they are small and everything waits for them),
// then the rest by name.
func (t *tree) ordered() []*file {
	out := append([]*file(nil), t.files...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].scan != out[j].scan {
			return out[i].scan
		}
		return out[i].name < out[j].name
	})
	return out
}

// mediaTypes of common course files whose system entry varies (or is
// missing) between machines, so that an import gives the same media types
// everywhere.
var mediaTypes = map[string]string{
	".srt":   "application/x-subrip",
	".vtt":   "text/vtt",
	".sjson": "application/json",
	".mp4":   "video/mp4",
	".m4v":   "video/mp4",
	".webm":  "video/webm",
	".mp3":   "audio/mpeg",
	".ogg":   "audio/ogg",
	".xml":   "application/xml",
	".html":  "text/html",
	".htm":   "text/html",
	".txt":   "text/plain",
	".md":    "text/markdown",
	".csv":   "text/csv",
	".json":  "application/json",
	".pdf":   "application/pdf",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".svg":   "image/svg+xml",
	".webp":  "image/webp",
	".zip":   "application/zip",
	".tar":   "application/x-tar",
	".gz":    "application/gzip",
}

// mediaTypeOf is the media type of a file by its extension:
// application/octet-stream when unknown.
func mediaTypeOf(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if mt, ok := mediaTypes[ext]; ok {
		return mt
	}
	if mt := mime.TypeByExtension(ext); mt != "" && ext != "" {
		return mt
	}
	return "application/octet-stream"
}

package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestImportExportCommands drives the two commands as an importer would:
// import the OLX course, import it again (nothing uploaded, nothing
// created), export it, and compare the trees byte for byte.
func TestImportExportCommands(t *testing.T) {
	s := startServer(t, "--data", filepath.Join(t.TempDir(), "data"))
	bin, _ := buildBinary()
	src, err := filepath.Abs("../../client/importer/testdata/olx-course")
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Collection      string `json:"collection"`
		Files           int64  `json:"files"`
		BytesUploaded   int64  `json:"bytes_uploaded"`
		EntitiesCreated int64  `json:"entities_created"`
		VersionsAdded   int64  `json:"versions_added"`
	}
	importOnce := func(args ...string) summary {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"import", src, "--server", s.URL, "--json"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("import: %v\n%s\n%s", err, stdout.String(), stderr.String())
		}
		var sum summary
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatalf("import --json: %v\n%s", err, stdout.String())
		}
		return sum
	}
	first := importOnce("--new-collection", "course")
	if first.Files == 0 || first.EntitiesCreated == 0 || first.BytesUploaded == 0 {
		t.Fatalf("first import: %+v", first)
	}
	again := importOnce("--collection", first.Collection)
	if again.BytesUploaded != 0 || again.EntitiesCreated != 0 || again.VersionsAdded != 0 || again.Files != first.Files {
		t.Fatalf("re-import: %+v, want nothing uploaded or created", again)
	}

	out := filepath.Join(t.TempDir(), "export")
	if b, err := exec.Command(bin, "export", out, "--server", s.URL, "--collection", first.Collection).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, b)
	}
	want, got := readTree(t, src), readTree(t, out)
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s differs after import and export", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("export wrote %s, which the source does not have", name)
		}
	}

	// A server that is not there: a clear error and a non-zero exit.
	b, err := exec.Command(bin, "import", src, "--server", "http://127.0.0.1:1", "--new-collection", "x").CombinedOutput()
	if err == nil || len(b) == 0 {
		t.Fatalf("import to a closed port: %v\n%s", err, b)
	}
}

func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

package app

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/internal/backup"
	"github.com/blockstore/blockstore/internal/testenv"
)

// backupContent is what a test writes before a backup and reads back after
// the restore.
type backupContent struct {
	units  map[uuid.UUID][]byte // OLX of the latest version
	assets map[uuid.UUID][]byte
	draft  uuid.UUID // a unit with only a draft
	stray  []byte    // a blob uploaded and never referenced (a live registry row)
}

// writeBackupContent writes units, assets (one over the size Open verifies
// in memory), a draft and a stray blob through the API.
func writeBackupContent(t *testing.T, base string) backupContent {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(base, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "backup"})
	if err != nil {
		t.Fatal(err)
	}
	bc := backupContent{units: map[uuid.UUID][]byte{}, assets: map[uuid.UUID][]byte{}}
	for i := range 5 {
		olx := fmt.Sprintf("<problem id=%q>%s</problem>", fmt.Sprint(i), strings.Repeat("x", i*100))
		u, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, OLX: olx})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			olx += "<!-- v2 -->"
			if u, _, err = c.NewUnitVersion(ctx, u.UUID, client.UnitChange{OLX: olx}); err != nil {
				t.Fatal(err)
			}
		}
		bc.units[u.UUID] = []byte(olx)
	}
	sizes := []int{0, 1, 70_000, cas.DefaultVerifyReadsUpTo + 12345}
	for i, n := range sizes {
		b := bytes.Repeat([]byte{byte('a' + i)}, n)
		a, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: fmt.Sprintf("asset-%d", i)}, client.Content{Body: client.BytesBody(b)})
		if err != nil {
			t.Fatal(err)
		}
		bc.assets[a.UUID] = b
	}
	d, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, OLX: "<draft/>", Draft: true})
	if err != nil {
		t.Fatal(err)
	}
	bc.draft = d.UUID
	bc.stray = []byte("uploaded, never referenced")
	if _, err := c.PutBlob(ctx, cas.Sum(bc.stray), client.BytesBody(bc.stray)); err != nil {
		t.Fatal(err)
	}
	return bc
}

// checkBackupContent reads bc back through the API at base.
func checkBackupContent(t *testing.T, base string, bc backupContent) {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(base, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	read := func(what string, d *client.Download, err error, want []byte) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got, err := io.ReadAll(d.Body)
		d.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes (%v), want %d", what, len(got), err, len(want))
		}
	}
	for id, olx := range bc.units {
		d, err := c.UnitOLX(ctx, id, client.Latest, client.GetOptions{})
		read("unit "+id.String(), d, err, olx)
	}
	for id, b := range bc.assets {
		d, err := c.AssetContent(ctx, id, client.Latest, client.GetOptions{})
		read("asset "+id.String(), d, err, b)
	}
	d, err := c.UnitOLX(ctx, bc.draft, client.Draft, client.GetOptions{})
	read("draft", d, err, []byte("<draft/>"))
	d, err = c.GetBlob(ctx, cas.Sum(bc.stray), client.GetOptions{})
	read("stray blob", d, err, bc.stray)
}

// postBackup asks base for a backup stream.
func postBackup(t *testing.T, base, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/backup", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// receive writes the backup stream of base into a new directory.
func receive(t *testing.T, base string) (string, backup.Manifest) {
	t.Helper()
	resp := postBackup(t, base, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-tar" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /api/v1/backup: %d %s", resp.StatusCode, b)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	bd, err := backup.CreateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := bd.Receive(context.Background(), resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func TestBackupRoundTrip(t *testing.T) {
	for _, d := range []deployment{
		{"embedded", func(t *testing.T) Config { return Config{DataDir: filepath.Join(t.TempDir(), "data")} }},
		{"pebble+s3", func(t *testing.T) Config {
			return Config{DataDir: filepath.Join(t.TempDir(), "data"), S3: s3Config(testenv.MinIO(t), "t-"+randomHex(6)), AllowEmbeddedIndexWithS3: true}
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			src := openApp(t, d.cfg(t))
			base := serve(t, src)
			bc := writeBackupContent(t, base)
			dir, m := receive(t, base)
			// 4 assets and the stray blob; the OLX of the 5 units (3 with
			// two versions) and of the draft is inline, in the checkpoint.
			const inline = 5 + 3 + 1
			if want := int64(4 + 1); m.Blobs != want {
				t.Errorf("manifest: %d blobs, want %d", m.Blobs, want)
			}
			if _, err := os.Stat(filepath.Join(src.Config.DataDir, backupTempDir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the checkpoint was left behind: %v", err)
			}
			onDisk, err := backup.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if onDisk.Blobs != m.Blobs || len(onDisk.IndexFiles) != len(m.IndexFiles) {
				t.Fatalf("MANIFEST.json %+v, stream %+v", onDisk, m)
			}

			cfg := d.cfg(t)
			rep, err := Restore(ctx, dir, cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Blobs != m.Blobs || rep.BlobBytes != m.BlobBytes || rep.IndexFiles != len(m.IndexFiles) {
				t.Errorf("restore report %+v, manifest %+v", rep, m)
			}
			dst := openApp(t, cfg)
			vr, err := dst.Verify(ctx, VerifyOptions{})
			if err != nil || !vr.OK() || vr.BlobsStored != m.Blobs+inline {
				t.Fatalf("verify after restore: %+v, %v", vr, err)
			}
			checkBackupContent(t, serve(t, dst), bc)
		})
	}
}

// TestBackupHoldsTheSweepLock: a backup is refused while a sweep runs, and a
// sweep is refused while a backup runs.
func TestBackupHoldsTheSweepLock(t *testing.T) {
	ctx := context.Background()
	a := openApp(t, Config{DataDir: filepath.Join(t.TempDir(), "data")})
	base := serve(t, a)
	unlock, err := a.Index.TryLockGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp := postBackup(t, base, "")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), `"conflict"`) {
		t.Fatalf("backup while a sweep runs: %d %s, want 409 conflict", resp.StatusCode, body)
	}
	unlock()

	b, err := a.Backup.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.GC.Sweep(ctx, gc.Request{DryRun: true}); !errors.Is(err, gc.ErrRunning) {
		t.Fatalf("sweep while a backup runs: %v, want gc.ErrRunning", err)
	}
	if _, err := a.Backup.Write(ctx, io.Discard); !errors.Is(err, backup.ErrBusy) {
		t.Fatalf("a second backup: %v, want backup.ErrBusy", err)
	}
	b.Close()
	if _, err := a.GC.Sweep(ctx, gc.Request{DryRun: true}); err != nil {
		t.Fatalf("sweep after the backup: %v", err)
	}
}

func TestBackupTokens(t *testing.T) {
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), Tokens: Tokens{Write: "w", Read: "r"}}
	base := serve(t, openApp(t, cfg))
	for token, want := range map[string]int{"": 401, "r": 403, "w": 200} {
		if resp := postBackup(t, base, token); resp.StatusCode != want {
			t.Errorf("backup with token %q: %d, want %d", token, resp.StatusCode, want)
		}
	}
}

func TestBackupRefusesPostgreSQL(t *testing.T) {
	a := openApp(t, productionConfig(t))
	resp := postBackup(t, serve(t, a), "")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "pg_dump") {
		t.Fatalf("backup of a PostgreSQL deployment: %d %s, want 400 naming pg_dump", resp.StatusCode, body)
	}
	if _, err := a.Backup.Write(context.Background(), io.Discard); !errors.Is(err, backup.ErrUnsupported) {
		t.Fatalf("Backup: %v, want backup.ErrUnsupported", err)
	}
	if _, err := Restore(context.Background(), t.TempDir(), a.Config, 0); err == nil || !strings.Contains(err.Error(), "pg_restore") {
		t.Fatalf("Restore into PostgreSQL: %v", err)
	}
}

// TestBackupOfDamagedStore: a blob the index needs is missing, or a large
// one is corrupt: the stream ends without its manifest and the directory
// is left empty.
func TestBackupOfDamagedStore(t *testing.T) {
	for _, damage := range []string{"missing", "corrupt"} {
		t.Run(damage, func(t *testing.T) {
			a := openApp(t, Config{DataDir: filepath.Join(t.TempDir(), "data")})
			base := serve(t, a)
			bc := writeBackupContent(t, base)
			var big []byte
			for _, b := range bc.assets {
				if len(b) > len(big) {
					big = b
				}
			}
			h := cas.Sum(big).String()
			p := filepath.Join(a.Config.DataDir, "blobs", h[:2], h[2:4], h)
			if damage == "missing" {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(p, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteAt([]byte{'#'}, int64(len(big)-1))
				f.Close()
			}
			resp := postBackup(t, base, "")
			dir := filepath.Join(t.TempDir(), "backup")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			bd, err := backup.CreateDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bd.Receive(context.Background(), resp.Body); !errors.Is(err, backup.ErrIncomplete) {
				t.Fatalf("receive a backup of a store with a %s blob: %v, want backup.ErrIncomplete", damage, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a failed backup left %v", entries)
			}
			// The server's handler lets the sweep lock go once it has
			// closed the connection: moments after the client saw it.
			for i := 0; ; i++ {
				_, err := a.GC.Sweep(context.Background(), gc.Request{DryRun: true})
				if err == nil {
					break
				}
				if !errors.Is(err, gc.ErrRunning) || i == 100 {
					t.Fatalf("sweep after a failed backup: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestBackupReceiveRefusesBrokenStreams: a stream cut short, one whose manifest
// disagrees, entries that leave the directory, and a directory that is not
// empty.
func TestBackupReceiveRefusesBrokenStreams(t *testing.T) {
	ctx := context.Background()
	a := openApp(t, Config{DataDir: filepath.Join(t.TempDir(), "data")})
	writeBackupContent(t, serve(t, a))
	var stream bytes.Buffer
	m, err := a.Backup.Write(ctx, &stream)
	if err != nil {
		t.Fatal(err)
	}
	full := stream.Bytes()

	try := func(name string, b []byte) error {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "backup")
		bd, err := backup.CreateDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bd.Receive(ctx, bytes.NewReader(b))
		if _, serr := os.Stat(dir); err != nil && !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s: the failed backup left %s", name, dir)
		}
		return err
	}
	if err := try("whole", full); err != nil {
		t.Fatalf("the whole stream: %v", err)
	}
	for _, cut := range []int{0, 100, 1024, len(full) / 2, len(full) - 2048} {
		if err := try("cut", full[:cut]); !errors.Is(err, backup.ErrIncomplete) {
			t.Errorf("a stream cut at %d of %d bytes: %v, want backup.ErrIncomplete", cut, len(full), err)
		}
	}
	// A manifest that claims one blob more.
	lie, _ := json.Marshal(m)
	lie2 := bytes.Replace(lie, []byte(fmt.Sprintf(`"blobs":%d`, m.Blobs)), []byte(fmt.Sprintf(`"blobs":%d`, m.Blobs+1)), 1)
	if bytes.Equal(lie, lie2) {
		t.Fatal("test: the manifest was not changed")
	}
	if err := try("lie", rebuildTar(t, full, func(name string, body []byte) (string, []byte) {
		if name == "MANIFEST.json" {
			return name, lie2
		}
		return name, body
	})); !errors.Is(err, backup.ErrIncomplete) {
		t.Errorf("a manifest that disagrees: %v", err)
	}
	// A blob whose bytes are not its name.
	if err := try("bad blob", rebuildTar(t, full, func(name string, body []byte) (string, []byte) {
		if strings.HasPrefix(name, "blobs/") && len(body) > 0 {
			body = append([]byte{body[0] ^ 1}, body[1:]...)
		}
		return name, body
	})); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("a blob that does not hash to its name: %v", err)
	}
	for _, bad := range []string{"index/../escape", "index//x", "../x", "blobs/ABC", "other"} {
		if err := try(bad, rebuildTar(t, full, func(name string, body []byte) (string, []byte) {
			if strings.HasPrefix(name, "index/") {
				return bad, body
			}
			return name, body
		})); !errors.Is(err, backup.ErrIncomplete) {
			t.Errorf("entry %q: %v, want backup.ErrIncomplete", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(a.Config.DataDir), "escape")); err == nil {
		t.Error("an entry escaped the backup directory")
	}

	full2 := t.TempDir()
	os.WriteFile(filepath.Join(full2, "x"), []byte("x"), 0o644)
	if _, err := backup.CreateDir(full2); !errors.Is(err, backup.ErrNotEmpty) {
		t.Errorf("backup into a directory that is not empty: %v, want backup.ErrNotEmpty", err)
	}
}

// TestRestoreRefusals: a target that is not empty, a backup without its
// manifest, with an index file changed, a blob missing or corrupt: each is
// refused and the target is left as it was.
func TestRestoreRefusals(t *testing.T) {
	ctx := context.Background()
	a := openApp(t, Config{DataDir: filepath.Join(t.TempDir(), "data")})
	bc := writeBackupContent(t, serve(t, a))
	good, m := receive(t, serve(t, a))

	// A copy of the good backup to damage.
	damaged := func(t *testing.T, change func(dir string)) string {
		dir := filepath.Join(t.TempDir(), "copy")
		if err := os.CopyFS(dir, os.DirFS(good)); err != nil {
			t.Fatal(err)
		}
		change(dir)
		return dir
	}
	blob := func(dir string, b []byte) string {
		h := cas.Sum(b).String()
		return filepath.Join(dir, "blobs", h[:2], h[2:4], h)
	}
	var big []byte
	for _, b := range bc.assets {
		if len(b) > len(big) {
			big = b
		}
	}
	cases := []struct {
		name   string
		backup string
		target func(t *testing.T) string
		want   error
	}{
		{"target not empty", good, func(t *testing.T) string {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, "keep"), []byte("mine"), 0o644)
			return d
		}, backup.ErrNotEmpty},
		{"no manifest", damaged(t, func(d string) { os.Remove(filepath.Join(d, "MANIFEST.json")) }), nil, backup.ErrIncomplete},
		{"index file changed", damaged(t, func(d string) {
			f := m.IndexFiles[len(m.IndexFiles)-1]
			p := filepath.Join(d, "index", filepath.FromSlash(f.Name))
			os.Chmod(p, 0o644)
			os.WriteFile(p, append([]byte("x"), make([]byte, f.Size)...), 0o644)
		}), nil, backup.ErrIncomplete},
		{"index file missing", damaged(t, func(d string) {
			os.Remove(filepath.Join(d, "index", filepath.FromSlash(m.IndexFiles[0].Name)))
		}), nil, backup.ErrIncomplete},
		{"blob missing", damaged(t, func(d string) { os.Remove(blob(d, bc.stray)) }), nil, backup.ErrIncomplete},
		{"blob corrupt", damaged(t, func(d string) {
			p := blob(d, big)
			os.Chmod(p, 0o644)
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			f.WriteAt([]byte{'#'}, 10)
			f.Close()
		}), nil, backup.ErrIncomplete},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "data")
			if c.target != nil {
				target = c.target(t)
			}
			before, _ := os.ReadDir(target)
			_, err := Restore(ctx, c.backup, Config{DataDir: target}, 0)
			if !errors.Is(err, c.want) {
				t.Fatalf("restore: %v, want %v", err, c.want)
			}
			after, _ := os.ReadDir(target)
			if len(after) != len(before) {
				t.Fatalf("a refused restore changed the target: %v, then %v", before, after)
			}
			siblings, _ := os.ReadDir(filepath.Dir(target))
			for _, s := range siblings {
				if strings.Contains(s.Name(), ".restoring-") {
					t.Fatalf("a refused restore left %s", s.Name())
				}
			}
		})
	}
	// An empty directory is a fine target.
	target := t.TempDir()
	if _, err := Restore(ctx, good, Config{DataDir: target}, 2); err != nil {
		t.Fatalf("restore into an empty directory: %v", err)
	}
	checkBackupContent(t, serve(t, openApp(t, Config{DataDir: target})), bc)

	// A backup written before the blob directory was a dirstore kept each
	// blob at blobs/ab/<hash>: it restores as well.
	old := damaged(t, func(d string) {
		for _, b := range [][]byte{bc.stray, big} {
			h := cas.Sum(b).String()
			if err := os.Rename(blob(d, b), filepath.Join(d, "blobs", h[:2], h)); err != nil {
				t.Fatal(err)
			}
		}
	})
	target = filepath.Join(t.TempDir(), "data")
	if _, err := Restore(ctx, old, Config{DataDir: target}, 0); err != nil {
		t.Fatalf("restore a backup in the earlier layout: %v", err)
	}
	checkBackupContent(t, serve(t, openApp(t, Config{DataDir: target})), bc)
}

// rebuildTar rewrites the tar stream b, passing each entry through fn.
func rebuildTar(t *testing.T, b []byte, fn func(name string, body []byte) (string, []byte)) []byte {
	t.Helper()
	var out bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(b))
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name, body := fn(hdr.Name, body)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return out.Bytes()
}

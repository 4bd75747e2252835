package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/client/importer"
)

// clientFlags are the flags of commands that talk to a server.
type clientFlags struct {
	server, token *string
}

func addClientFlags(fs *flagSet) *clientFlags {
	return &clientFlags{
		server: fs.String("server", "", "URL of a Blockstore server (http://127.0.0.1:8080)"),
		token:  fs.Secret("token", "bearer token for the server"),
	}
}

func (f *clientFlags) client() (*client.Client, error) {
	if *f.server == "" {
		return nil, usageError{fmt.Errorf("--server is required")}
	}
	return client.New(*f.server, client.Options{Token: *f.token})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", "import DIR --server URL (--collection UUID | --new-collection NAME) [--jobs N] [--json]")
	cf := addClientFlags(fs)
	collection := fs.String("collection", "", "UUID of the collection to import into")
	newCollection := fs.String("new-collection", "", "create a collection with this name and import into it")
	jobs := fs.Int("jobs", 0, "files hashed and uploaded at once (0: the number of CPUs)")
	gcFlag := fs.Bool("garbage-collect", false, "let GC collect old versions and orphaned assets of what this import creates")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	dirArg, err := parseWithDir(fs, args, stderr)
	if err != nil {
		return err
	}
	opt := importer.ImportOptions{Jobs: *jobs, GarbageCollect: *gcFlag, Progress: stderr, IsTerminal: isTerminal(stderr)}
	switch {
	case *collection != "" && *newCollection != "":
		return usageError{fmt.Errorf("give --collection or --new-collection, not both")}
	case *collection != "":
		id, err := uuid.Parse(*collection)
		if err != nil {
			return usageError{fmt.Errorf("--collection %q is not a UUID", *collection)}
		}
		opt.Collection = id
	case *newCollection != "":
		opt.NewCollection = &client.NewCollection{Name: *newCollection}
	default:
		return usageError{fmt.Errorf("give --collection UUID or --new-collection NAME")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	sum, err := importer.Import(ctx, c, dirArg, opt)
	return printSummary(stdout, *asJSON, sum, err)
}

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", "export --server URL --collection UUID DIR [--json]")
	cf := addClientFlags(fs)
	collection := fs.String("collection", "", "UUID of the collection to export")
	jobs := fs.Int("jobs", 0, "files downloaded at once (0: the default)")
	overwrite := fs.Bool("overwrite", false, "replace files that differ from the collection's")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	dirArg, err := parseWithDir(fs, args, stderr)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(*collection)
	if err != nil {
		return usageError{fmt.Errorf("--collection %q is not a UUID", *collection)}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	sum, err := importer.Export(ctx, c, id, dirArg, importer.ExportOptions{
		Jobs: *jobs, Overwrite: *overwrite, Progress: stderr, IsTerminal: isTerminal(stderr),
	})
	return printSummary(stdout, *asJSON, sum, err)
}

// parseWithDir parses the flags of a command that takes one DIR, which may
// come before the flags ("import DIR --server …") or after them.
func parseWithDir(fs *flagSet, args []string, stderr io.Writer) (string, error) {
	var dir string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		dir, args = args[0], args[1:]
	}
	if err := parse(fs, args, stderr); err != nil {
		return "", err
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	} else if fs.NArg() > 0 || dir == "" {
		return "", usageError{fmt.Errorf("want exactly one directory")}
	}
	return dir, nil
}

// printSummary prints what a command did, as JSON or for people, also when
// it failed (runErr), and returns runErr or the printing error.
func printSummary(w io.Writer, asJSON bool, sum interface{ WriteText(io.Writer) error }, runErr error) error {
	var err error
	if asJSON {
		err = writeJSON(w, sum)
	} else {
		err = sum.WriteText(w)
	}
	if runErr != nil {
		return runErr
	}
	return err
}

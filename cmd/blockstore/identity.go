package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockstore/blockstore/internal/app"
)

// runIdentity shows or forces the binding between an index and its blob
// store (README, Store identity). Every other command checks the binding
// when it opens the stores and binds a fresh pair by itself; this command is
// for the cases it refuses and that the operator knows to be right.
func runIdentity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "identity show [--json] [store flags] | identity bind --force [--json] [store flags]"
	if len(args) == 0 || (args[0] != "show" && args[0] != "bind") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, "usage: blockstore "+usage)
			return nil
		}
		return usageError{fmt.Errorf("want a subcommand: %s", usage)}
	}
	sub := args[0]
	fs := newFlagSet("identity "+sub, usage)
	sf := addStoreFlags(fs)
	force := fs.Bool("force", false, "bind: write the binding whatever the two sides record (the blob store's id, else the index's, else a new one)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args[1:], stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	var rep app.IdentityReport
	var err error
	switch {
	case sub == "show":
		rep, err = app.ShowIdentity(ctx, sf.config())
	case !*force:
		return usageError{fmt.Errorf("identity bind needs --force: every command already binds a matching pair when it opens it; " +
			"--force binds this index and this blob store even though they look like different deployments")}
	default:
		rep, err = app.ForceBind(ctx, sf.config())
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	show := func(id string) string {
		if id == "" {
			return "(none)"
		}
		return id
	}
	idxNote := ""
	if rep.IndexFresh {
		idxNote = " (does not exist yet)"
	}
	fmt.Fprintf(stdout, "index       %s%s\n  store id  %s\n  blobs     %v\n", rep.Index, idxNote, show(rep.IndexID), rep.IndexHoldsBlobs)
	fmt.Fprintf(stdout, "blob store  %s\n  store id  %s\n  blobs     %v\n", rep.Blobs, show(rep.BlobsID), rep.BlobsHoldBlobs)
	if rep.Bound {
		fmt.Fprintln(stdout, "bound")
	} else {
		fmt.Fprintln(stdout, "not bound")
	}
	return nil
}

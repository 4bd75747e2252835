package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/blockstore/blockstore/internal/app"
)

// errFound makes verify exit non-zero when it found damage.
var errFound = errors.New("corrupt or missing blobs found")

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "verify [--sample P] [--json] [store flags]")
	sf := addStoreFlags(fs)
	sample := fs.String("sample", "1", "fraction of stored blobs to re-hash, in (0, 1] (references are always all checked)")
	jobs := fs.Int("jobs", 4, "blobs read at once")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	var p float64
	if _, err := fmt.Sscan(*sample, &p); err != nil || p <= 0 || p > 1 {
		return usageError{fmt.Errorf("--sample %q: want a fraction in (0, 1], e.g. 0.1", *sample)}
	}
	a, err := app.Open(ctx, sf.config())
	if err != nil {
		return err
	}
	defer a.Close()
	rep, err := a.Verify(ctx, app.VerifyOptions{Sample: p, Jobs: *jobs})
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "blobs stored   %d\nblobs checked  %d (%d bytes re-hashed)\nreferences     %d\n",
			rep.BlobsStored, rep.BlobsChecked, rep.BytesChecked, rep.References)
		for _, h := range rep.Corrupt {
			fmt.Fprintf(stdout, "corrupt        %s\n", h)
		}
		for _, h := range rep.Missing {
			fmt.Fprintf(stdout, "missing        %s\n", h)
		}
		if rep.OK() {
			fmt.Fprintln(stdout, "ok")
		}
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d corrupt, %d missing", errFound, len(rep.Corrupt), len(rep.Missing))
	}
	return nil
}

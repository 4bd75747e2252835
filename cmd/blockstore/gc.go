package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/internal/app"
)

func runGC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gc", "gc [--dry-run] [--retention 720h] [--grace 24h] [--gc-allow-mass-delete] [--json] [--server URL | store flags]")
	sf := addStoreFlags(fs)
	cf := addClientFlags(fs)
	dryRun := fs.Bool("dry-run", false, "report what the sweep would remove and change nothing")
	retention := fs.String("retention", "", "override --gc-retention for this sweep (e.g. 720h)")
	grace := fs.String("grace", "", "override --gc-grace for this sweep (e.g. 24h, 0s)")
	force := fs.Bool("gc-allow-mass-delete", false, "let this sweep delete more than --gc-max-delete-share of the stored blobs or bytes")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	req := gc.Request{DryRun: *dryRun, Force: *force}
	for _, d := range []struct {
		flag string
		s    *string
		dst  **time.Duration
	}{{"--retention", retention, &req.Retention}, {"--grace", grace, &req.Grace}} {
		if *d.s == "" {
			continue
		}
		v, err := time.ParseDuration(*d.s)
		if err != nil || v < 0 {
			return usageError{fmt.Errorf("%s %q is not a duration of zero or more", d.flag, *d.s)}
		}
		*d.dst = &v
	}

	var rep gc.Report
	if *cf.server != "" {
		c, err := cf.client()
		if err != nil {
			return err
		}
		// A flag that was given is sent, zero included: the server's
		// defaults apply only to what the operator left out.
		creq := client.GCRequest{DryRun: req.DryRun, Force: req.Force}
		if req.Retention != nil {
			creq.Retention, creq.RetentionSet = *req.Retention, true
		}
		if req.Grace != nil {
			creq.Grace, creq.GraceSet = *req.Grace, true
		}
		r, err := c.GC(ctx, creq)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(r)
		if err := json.Unmarshal(b, &rep); err != nil {
			return err
		}
	} else {
		cfg := sf.config()
		var err error
		if cfg.GCMaxDeleteShare, err = sf.gcMaxDeleteShare(); err != nil {
			return err
		}
		a, err := app.Open(ctx, cfg)
		if err != nil {
			return err
		}
		defer a.Close()
		rep, err = a.GC.Sweep(ctx, req)
		if err != nil && !errors.Is(err, gc.ErrMassDelete) {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := writeReport(stdout, rep); err != nil {
		return err
	}
	if rep.Status == gc.StatusFailed {
		return fmt.Errorf("gc run %s failed: %s", rep.ID, rep.Error)
	}
	return nil
}

// writeReport prints a sweep report as a table.
func writeReport(w io.Writer, r gc.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	mode := "sweep"
	if r.DryRun {
		mode = "dry run (nothing changed)"
	}
	fmt.Fprintf(tw, "gc run\t%s\t%s\n", r.ID, mode)
	fmt.Fprintf(tw, "status\t%s\t\n", r.Status)
	fmt.Fprintf(tw, "versions deleted\t%d\t\n", r.VersionsDeleted)
	fmt.Fprintf(tw, "assets deleted\t%d\t\n", r.AssetsDeleted)
	fmt.Fprintf(tw, "blobs deleted\t%d\t%s freed\n", r.BlobsDeleted, humanize.IBytes(uint64(max(r.BytesFreed, 0))))
	fmt.Fprintf(tw, "blobs kept\t%d\t\n", r.BlobsKept)
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "phase %s\t%.3fs\t\n", p.Name, p.Seconds)
	}
	if r.Error != "" {
		fmt.Fprintf(tw, "error\t%s\t\n", r.Error)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note\t%s\t\n", n)
	}
	return tw.Flush()
}

// Command blockstore-bench runs Blockstore's end-to-end benchmarks (package
// bench) and prints one table: every figure beside the machine's limits and
// beside MinIO doing the same work, measured in the same invocation. It
// also writes the table as markdown (-out).
//
//	go run ./bench/cmd/blockstore-bench -scale quick     # make bench-quick
//	go run ./bench/cmd/blockstore-bench                  # make bench
//
// It needs PostgreSQL (BLOCKSTORE_TEST_DATABASE_URL, else the local
// server) and the MinIO server that `make minio` builds. Exit code 1 when a
// measurement failed (the table says which), 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/blockstore/blockstore/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("blockstore-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scale := fs.String("scale", string(bench.Default), "sizes: smoke, quick (under two minutes), default (the issues' sizes) or full")
	out := fs.String("out", "", "also write the table as markdown to this file (e.g. bench/results/latest.md)")
	dir := fs.String("dir", "", "where the run's temporary directory goes (default: the system's temp directory); the disk limits are measured there")
	gcDir := fs.String("gc-dir", "", "where the sweep benchmark's world goes (default: with the rest, in -dir)")
	bin := fs.String("binary", "", "a blockstore binary to run (default: build ./cmd/blockstore)")
	only := fs.String("only", "", "comma-separated sections to run: "+strings.Join(bench.Sections, ","))
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	profiles := fs.String("profiles", "", "write a CPU profile of every server started into this directory (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	sc, err := bench.ParseScale(*scale)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	opt := bench.Options{Scale: sc, Dir: *dir, GCDir: *gcDir, Binary: *bin, Log: stderr, Command: "blockstore-bench " + strings.Join(args, " "), Profiles: *profiles}
	if *quiet {
		opt.Log = nil
	}
	if *only != "" {
		opt.Only = strings.Split(*only, ",")
	}
	rep, err := bench.Run(ctx, opt)
	if rep == nil {
		fmt.Fprintln(stderr, "blockstore-bench:", err)
		return 1
	}
	code := 0
	if err != nil {
		fmt.Fprintln(stderr, "blockstore-bench:", err)
		code = 1
	}
	fmt.Fprintln(stdout)
	if werr := rep.WriteMarkdown(stdout); werr != nil {
		fmt.Fprintln(stderr, "blockstore-bench:", werr)
		return 1
	}
	if *out != "" {
		if werr := writeFile(*out, rep); werr != nil {
			fmt.Fprintln(stderr, "blockstore-bench:", werr)
			return 1
		}
		fmt.Fprintln(stderr, "wrote", *out)
	}
	return code
}

// writeFile writes the report through a temporary file renamed into place.
func writeFile(path string, rep *bench.Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := rep.WriteMarkdown(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

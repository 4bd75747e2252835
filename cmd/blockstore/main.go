// Command blockstore is Blockstore's one binary: the server and the tools
// that operators and importers run. Every flag also reads an environment
// variable (--s3-bucket ↔ BLOCKSTORE_S3_BUCKET).
//
//	blockstore serve      run the HTTP API (embedded default: ./blockstore-data)
//	blockstore migrate    apply the PostgreSQL schema migrations and exit
//	blockstore gc         run a garbage collection sweep
//	blockstore verify     re-hash blobs and check that every referenced blob exists
//	blockstore identity   show or force the binding of an index and its blob store
//	blockstore backup     back up an embedded deployment into a directory, also while it serves
//	blockstore restore    bring a backup back into an empty data directory
//	blockstore import     import a directory (an OLX export or plain files)
//	blockstore export     write a collection back to a directory
//	blockstore copy       copy a whole deployment into another (embedded → PostgreSQL + S3, …)
//	blockstore version    print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exit codes
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP API", runServe},
		{"migrate", "apply the PostgreSQL schema migrations and exit", runMigrate},
		{"gc", "run a garbage collection sweep (on the stores, or through --server)", runGC},
		{"verify", "re-hash stored blobs and check that every referenced blob exists", runVerify},
		{"identity", "show the store ids of an index and its blob store, or bind them with --force", runIdentity},
		{"backup", "write a consistent backup of an embedded deployment into a directory (on the stores, or through --server)", runBackup},
		{"restore", "bring a backup back into an empty data directory", runRestore},
		{"import", "import a directory into a collection through a server", runImport},
		{"export", "write a collection's latest units and assets to a directory", runExport},
		{"changes", "print the change feed through a server, one change per line (--follow keeps waiting)", runChanges},
		{"copy", "copy a whole deployment (index and blobs, every version) into another", runCopy},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "blockstore", version)
			return nil
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks an error in the command line (exit code 2).
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "blockstore %s: %v\n", c.name, err)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "blockstore %s: %v\n", c.name, err)
			return exitFailure
		}
	}
	fmt.Fprintf(stderr, "blockstore: unknown command %q\n\n", args[0])
	printHelp(stderr)
	return exitUsage
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: blockstore COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n'blockstore COMMAND -h' lists a command's flags; every flag is also an environment variable BLOCKSTORE_<FLAG>.")
}

// parse parses a command's flags, turning errors into usage errors.
func parse(fs *flagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// newLogger returns the process's logger: JSON or text on stderr.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	opt := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opt)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opt)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", format)}
}

package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// flagSet is a flag.FlagSet whose every flag also reads an environment
// variable: --s3-bucket ↔ BLOCKSTORE_S3_BUCKET. A flag given on the command
// line wins over the environment, which wins over the default.
//
// Every duration flag is checked after Parse, whichever source set it: a
// negative duration is refused (it would otherwise read as "tiny" or "off"
// somewhere downstream), and so is zero for a flag registered with
// PositiveDuration, where zero means nothing (a timeout).
type flagSet struct {
	*flag.FlagSet
	envErr    []string
	secrets   map[string]*string // flag name → value, filled from the environment after Parse
	durations []durationFlag
}

// durationFlag is a registered duration and the least value it may take.
type durationFlag struct {
	name     string
	p        *time.Duration
	positive bool // zero is refused too
}

func newFlagSet(name, usage string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: blockstore %s\n\nEvery flag may also be set as the environment variable shown.\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// envName maps a flag name to its environment variable.
func envName(name string) string {
	return "BLOCKSTORE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func (fs *flagSet) env(name string) (string, bool) {
	return os.LookupEnv(envName(name))
}

func (fs *flagSet) usage(name, usage string) string {
	return usage + " (env " + envName(name) + ")"
}

func (fs *flagSet) String(name, def, usage string) *string {
	if v, ok := fs.env(name); ok {
		def = v
	}
	return fs.FlagSet.String(name, def, fs.usage(name, usage))
}

// Secret is a string flag whose environment value is never shown as the
// flag's default (help output would print it otherwise).
func (fs *flagSet) Secret(name, usage string) *string {
	p := fs.FlagSet.String(name, "", fs.usage(name, usage))
	if fs.secrets == nil {
		fs.secrets = map[string]*string{}
	}
	fs.secrets[name] = p
	return p
}

func (fs *flagSet) Bool(name string, def bool, usage string) *bool {
	if v, ok := fs.env(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fs.envErr = append(fs.envErr, fmt.Sprintf("%s=%q is not a boolean", envName(name), v))
		}
		def = b
	}
	return fs.FlagSet.Bool(name, def, fs.usage(name, usage))
}

func (fs *flagSet) Int(name string, def int, usage string) *int {
	if v, ok := fs.env(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			fs.envErr = append(fs.envErr, fmt.Sprintf("%s=%q is not an integer", envName(name), v))
		}
		def = n
	}
	return fs.FlagSet.Int(name, def, fs.usage(name, usage))
}

func (fs *flagSet) Int64(name string, def int64, usage string) *int64 {
	if v, ok := fs.env(name); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fs.envErr = append(fs.envErr, fmt.Sprintf("%s=%q is not an integer", envName(name), v))
		}
		def = n
	}
	return fs.FlagSet.Int64(name, def, fs.usage(name, usage))
}

// Duration is a duration flag of zero or more.
func (fs *flagSet) Duration(name string, def time.Duration, usage string) *time.Duration {
	return fs.duration(name, def, usage, false)
}

// PositiveDuration is a duration flag that must be more than zero.
func (fs *flagSet) PositiveDuration(name string, def time.Duration, usage string) *time.Duration {
	return fs.duration(name, def, usage, true)
}

func (fs *flagSet) duration(name string, def time.Duration, usage string, positive bool) *time.Duration {
	if v, ok := fs.env(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			fs.envErr = append(fs.envErr, fmt.Sprintf("%s=%q is not a duration", envName(name), v))
		}
		def = d
	}
	p := fs.FlagSet.Duration(name, def, fs.usage(name, usage))
	fs.durations = append(fs.durations, durationFlag{name: name, p: p, positive: positive})
	return p
}

// checkDurations refuses negative durations, and zero where it is refused,
// naming the flag and, when the value came from there, its variable.
func (fs *flagSet) checkDurations(given map[string]bool) error {
	var bad []string
	for _, d := range fs.durations {
		if *d.p > 0 || (*d.p == 0 && !d.positive) {
			continue
		}
		want := "zero or more"
		if d.positive {
			want = "more than zero"
		}
		src := "--" + d.name + " " + d.p.String()
		if v, ok := fs.env(d.name); ok && !given[d.name] {
			src = fmt.Sprintf("%s=%q (--%s)", envName(d.name), v, d.name)
		}
		bad = append(bad, fmt.Sprintf("%s: want a duration of %s", src, want))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

// Parse parses args and reports environment variables that did not parse.
func (fs *flagSet) Parse(args []string) error {
	if len(fs.envErr) > 0 {
		return fmt.Errorf("%s", strings.Join(fs.envErr, "; "))
	}
	if err := fs.FlagSet.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, p := range fs.secrets {
		if v, ok := fs.env(name); ok && !given[name] {
			*p = v
		}
	}
	return fs.checkDurations(given)
}

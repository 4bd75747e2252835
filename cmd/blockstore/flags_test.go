package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFlagsReadTheEnvironment(t *testing.T) {
	t.Setenv("BLOCKSTORE_ADDR", "127.0.0.1:9999")
	t.Setenv("BLOCKSTORE_GC_INTERVAL", "12h")
	t.Setenv("BLOCKSTORE_S3_INSECURE", "true")
	t.Setenv("BLOCKSTORE_S3_SECRET_KEY", "s3cr3t")
	tests := []struct {
		name     string
		args     []string
		addr     string
		interval time.Duration
		secret   string
	}{
		{"environment", nil, "127.0.0.1:9999", 12 * time.Hour, "s3cr3t"},
		{"flag wins", []string{"--addr", "127.0.0.1:1", "--gc-interval", "1h", "--s3-secret-key", "other"}, "127.0.0.1:1", time.Hour, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlagSet("serve", "serve")
			sf := addStoreFlags(fs)
			addr := fs.String("addr", "127.0.0.1:8080", "")
			interval := fs.Duration("gc-interval", 0, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if *addr != tt.addr || *interval != tt.interval || *sf.s3SecretKey != tt.secret || !*sf.s3Insecure {
				t.Fatalf("addr %q interval %v secret %q insecure %v", *addr, *interval, *sf.s3SecretKey, *sf.s3Insecure)
			}
		})
	}
}

func TestBadEnvironmentIsAUsageError(t *testing.T) {
	t.Setenv("BLOCKSTORE_GC_INTERVAL", "soon")
	var stderr bytes.Buffer
	code := run(t.Context(), []string{"serve"}, &bytes.Buffer{}, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "BLOCKSTORE_GC_INTERVAL") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestSecretsStayOutOfHelp(t *testing.T) {
	t.Setenv("BLOCKSTORE_S3_SECRET_KEY", "hunter2-secret")
	t.Setenv("BLOCKSTORE_DATABASE_URL", "postgres://u:pw-secret@db/x")
	t.Setenv("BLOCKSTORE_TOKEN", "token-secret")
	for _, cmd := range []string{"serve", "gc", "import", "migrate"} {
		var out bytes.Buffer
		run(t.Context(), []string{cmd, "-h"}, &out, &out)
		for _, s := range []string{"hunter2-secret", "pw-secret", "token-secret"} {
			if strings.Contains(out.String(), s) {
				t.Errorf("%s -h shows a secret: %s", cmd, out.String())
			}
		}
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "commands:"},
		{[]string{"help"}, exitOK, "serve"},
		{[]string{"nope"}, exitUsage, "unknown command"},
		{[]string{"serve", "--no-such-flag"}, exitUsage, "no-such-flag"},
		{[]string{"serve", "extra"}, exitUsage, "unexpected arguments"},
		{[]string{"import", "--server", "http://127.0.0.1:1"}, exitUsage, "directory"},
		{[]string{"import", "dir", "--server", "http://127.0.0.1:1"}, exitUsage, "--collection"},
		{[]string{"export", "dir", "--server", "http://127.0.0.1:1", "--collection", "x"}, exitUsage, "not a UUID"},
		{[]string{"migrate"}, exitUsage, "--database-url is required"},
		{[]string{"gc", "--grace", "-1h"}, exitUsage, "--grace"},
		{[]string{"version"}, exitOK, "blockstore"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		code := run(t.Context(), tt.args, &out, &out)
		if code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("blockstore %q: exit %d, want %d; output %q should contain %q", tt.args, code, tt.code, out.String(), tt.want)
		}
	}
}

// TestNonsenseDurationsAreUsageErrors runs the real binary: a negative
// duration, on the command line or in the environment, and a zero where zero
// means nothing (a timeout), stop the command with exit 2 and a message
// naming the flag, before anything is opened.
func TestNonsenseDurationsAreUsageErrors(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		cmd  []string
		env  string // NAME=VALUE, or ""
		want string
	}{
		{[]string{"serve", "--gc-grace", "-1h"}, "", "--gc-grace"},
		{[]string{"serve", "--gc-retention", "-5m"}, "", "--gc-retention"},
		{[]string{"serve", "--gc-interval", "-1s"}, "", "--gc-interval"},
		{[]string{"serve", "--s3-timeout", "-30s"}, "", "--s3-timeout"},
		{[]string{"serve", "--s3-timeout", "0s"}, "", "--s3-timeout"},
		{[]string{"serve", "--shutdown-timeout", "-1s"}, "", "--shutdown-timeout"},
		{[]string{"serve", "--shutdown-timeout", "0s"}, "", "--shutdown-timeout"},
		{[]string{"serve"}, "BLOCKSTORE_GC_GRACE=-1h", "BLOCKSTORE_GC_GRACE"},
		{[]string{"serve"}, "BLOCKSTORE_GC_RETENTION=-5m", "BLOCKSTORE_GC_RETENTION"},
		{[]string{"serve"}, "BLOCKSTORE_S3_TIMEOUT=0", "BLOCKSTORE_S3_TIMEOUT"},
		{[]string{"gc", "--gc-grace", "-1h"}, "", "--gc-grace"},
		{[]string{"verify", "--gc-retention", "-1h"}, "", "--gc-retention"},
		{[]string{"backup", t.TempDir(), "--s3-timeout", "-1s"}, "", "--s3-timeout"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, bin, append(tt.cmd, "--data", data, "--addr", "127.0.0.1:0")...)
		if tt.cmd[0] != "serve" {
			cmd = exec.CommandContext(ctx, bin, append(tt.cmd, "--data", data)...)
		}
		cmd.Env = os.Environ()
		if tt.env != "" {
			cmd.Env = append(cmd.Env, tt.env)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		cancel()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%q: %v", tt.cmd, err)
		}
		if code != exitUsage || !strings.Contains(string(out), tt.want) {
			t.Errorf("blockstore %q (%s): exit %d, want %d with a message naming %s; output:\n%s", tt.cmd, tt.env, code, exitUsage, tt.want, out)
		}
		if _, err := os.Stat(data); err == nil {
			t.Fatalf("blockstore %q (%s) created the data directory before refusing its flags", tt.cmd, tt.env)
		}
	}
}

// TestUnwritableSpoolDirStopsServe: serve over a bucket refuses to start,
// naming the directory, when the spool directory cannot take files; with
// spooling off the directory is not looked at.
func TestUnwritableSpoolDirStopsServe(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(t.TempDir(), "absent")
	for _, tt := range []struct {
		extra []string
		want  string
	}{
		{nil, "spool directory " + spool + " is not writable"},
		{[]string{"--s3-spool-bytes", "-1"}, ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		// No bucket answers on port 1: the spool is checked before it.
		args := append([]string{"serve", "--data", filepath.Join(t.TempDir(), "data"), "--addr", "127.0.0.1:0",
			"--database-url", "postgres://127.0.0.1:1/none", "--s3-endpoint", "127.0.0.1:1", "--s3-insecure",
			"--s3-timeout", "1s", "--s3-spool-dir", spool}, tt.extra...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			t.Fatalf("serve %q started with no bucket", tt.extra)
		}
		if got := strings.Contains(string(out), "spool directory"); got != (tt.want != "") || !strings.Contains(string(out), tt.want) {
			t.Errorf("serve %q: output names the spool directory %v, want %q:\n%s", tt.extra, got, tt.want, out)
		}
	}
}

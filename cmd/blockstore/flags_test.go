package main

import (
	"bytes"
	"strings"
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

package pebbleindex

import (
	"bytes"
	"log"
	"os"
	"strings"
	"testing"
)

// TestErrorsAreThrottled: a storm of Pebble errors (a flush retried on a
// full disk) is one line of the log a second, not one per retry.
func TestErrorsAreThrottled(t *testing.T) {
	var buf bytes.Buffer
	log.SetOutput(&buf)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	l := &quietLogger{}
	for i := range 10000 {
		l.Errorf("background error: write %06d.sst: no space left on device", i)
	}
	if n := strings.Count(buf.String(), "\n"); n < 1 || n > 3 {
		t.Fatalf("%d lines for 10,000 errors within a second:\n%s", n, buf.String())
	}
}

// Package testenv gives tests the real services they run against: a
// PostgreSQL database of their own and a MinIO server on a loopback port.
//
// A missing service skips the test with a loud message on a laptop; under
// CI=true it fails the test, because a skipped suite is not a passing suite.
package testenv

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// service is a failure rather than a skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// Unavailable skips tb (or fails it under CI) because service is missing.
func Unavailable(tb testing.TB, service string, err error) {
	tb.Helper()
	msg := fmt.Sprintf("\n\n*** %s is not available: %v ***\n*** this suite did NOT run ***\n", service, err)
	if InCI() {
		tb.Fatal(msg + "(CI=true: a missing service fails the run)")
	}
	tb.Skip(msg + "(set CI=true to make this a failure)")
}

var (
	stopMu sync.Mutex
	stops  []func()
)

func atExit(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stops = append(stops, f)
}

// Main runs the package's tests and then stops every service this package
// started (MinIO servers, test databases), also when tests fail. Use it as
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	stopMu.Lock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	stopMu.Unlock()
	os.Exit(code)
}

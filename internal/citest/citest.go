// Package citest decides what a test does when a real component it needs
// (SoftHSM2, litewitness, ...) is missing: skip loudly on a developer's
// machine, fail under CI (environment variable CI set and non-empty), where
// a skipped test would hide that the component was never exercised.
package citest

import (
	"os"
	"testing"
)

// Enabled reports whether the tests run under CI.
func Enabled() bool { return os.Getenv("CI") != "" }

// SkipOrFail skips the test with a message naming component and why it
// cannot run, or fails it under CI.
func SkipOrFail(tb testing.TB, component, why string) {
	tb.Helper()
	if Enabled() {
		tb.Fatalf("%s tests cannot run under CI: %s", component, why)
	}
	tb.Skipf("\n\n!!!!!!!!!! SKIPPING %s test: %s !!!!!!!!!!\n\n", component, why)
}

package distcc

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Every test's fake servers, watchers and daemons must be gone when the
// tests end: Compile's cancellation hook included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline. It waits for conditions (a log line, a marker file), never
// for a fixed time.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

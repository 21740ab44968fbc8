package e2e

import (
	"os/exec"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/testenv"
)

// waitFor polls cond for up to 5 seconds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// missing skips, or fails under CI=true, for a service the test needs.
func missing(t testing.TB, why string) { testenv.Missing(t, "%s", why) }

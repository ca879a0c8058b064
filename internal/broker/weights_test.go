package broker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/logging"
)

// newTestBroker prepares (but does not start) a broker on farm text in a
// fresh directory; reopen builds another broker on the same state.
func newTestBroker(t *testing.T, farm string, tune func(*Config)) (b *Broker, writeFarm func(string), reopen func() *Broker) {
	t.Helper()
	dir := t.TempDir()
	farmFile := filepath.Join(dir, "farm")
	writeFarm = func(s string) {
		if err := os.WriteFile(farmFile, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFarm(farm)
	cfg := DefaultConfig()
	cfg.Listen, cfg.FarmFile, cfg.StateDir, cfg.HTTP, cfg.HTTPS = "127.0.0.1:0", farmFile, filepath.Join(dir, "state"), "", ""
	if tune != nil {
		tune(&cfg)
	}
	open := func() *Broker {
		b, err := New(cfg, logging.Nop())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return open(), writeFarm, open
}

func (b *Broker) weight(user string) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sched.Ledger().Weight(user)
}

// TestWeightsComeOnlyFromFarmFile: a user line removed from the farm file
// takes the user back to weight 1, after a reload and after a restart,
// while the user's usage survives the restart.
func TestWeightsComeOnlyFromFarmFile(t *testing.T) {
	b, writeFarm, reopen := newTestBroker(t, "h1 4 2\nuser vic weight=3\nuser ann weight=2\n", nil)
	if b.weight("vic") != 3 || b.weight("ann") != 2 {
		t.Fatalf("weights from the farm file: vic %g ann %g", b.weight("vic"), b.weight("ann"))
	}
	b.mu.Lock()
	b.sched.Ledger().Charge("vic", 50, time.Now())
	b.mu.Unlock()

	writeFarm("h1 4 2\nuser ann weight=2\n")
	b.ReloadFarm()
	if b.weight("vic") != 1 || b.weight("ann") != 2 {
		t.Fatalf("after reload without vic's line: vic %g ann %g", b.weight("vic"), b.weight("ann"))
	}
	writeFarm("h1 4 2\n")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = reopen()
	defer b.Close()
	if b.weight("vic") != 1 || b.weight("ann") != 1 {
		t.Fatalf("after restart on a farm file without user lines: vic %g ann %g", b.weight("vic"), b.weight("ann"))
	}
	b.mu.Lock()
	u := b.sched.Ledger().Usage("vic", time.Now())
	b.mu.Unlock()
	if u < 49 {
		t.Fatalf("usage lost over the restart: %g", u)
	}
}

// TestNegligibleAccountsPruned: an account whose usage has decayed to
// nothing is dropped from memory and from the state on disk.
func TestNegligibleAccountsPruned(t *testing.T) {
	b, _, reopen := newTestBroker(t, "h1 4 2\n", func(c *Config) { c.HalfLife = time.Second })
	now := time.Now()
	b.mu.Lock()
	b.sched.Ledger().Charge("ghost", 1, now.Add(-time.Minute)) // 60 half-lives ago
	b.sched.Ledger().Charge("fresh", 1, now)
	b.mu.Unlock()
	b.saveUsage()
	b.Close()
	b = reopen()
	defer b.Close()
	users, err := b.store.loadUsage()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := users["ghost"]; ok {
		t.Fatalf("negligible account persisted: %v", users)
	}
	if _, ok := users["fresh"]; !ok {
		t.Fatalf("live account lost: %v", users)
	}
}

// TestClientDurationsClamped: a client's wait and estimate figures, however
// large or negative, become durations in (0, limit] without overflow.
func TestClientDurationsClamped(t *testing.T) {
	limit := 10 * time.Minute
	for _, ms := range []int64{0, -1, -1 << 63, 1<<63 - 1, 1 << 50, limit.Milliseconds() + 1} {
		if got := clampDuration(ms, limit); got != limit {
			t.Errorf("clampDuration(%d) = %s, want %s", ms, got, limit)
		}
	}
	if got := clampDuration(1500, limit); got != 1500*time.Millisecond {
		t.Errorf("clampDuration(1500) = %s", got)
	}
}

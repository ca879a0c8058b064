package volunteer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// TestReplayLogSurvivesRestart: a token used before a restart is refused
// after it, for the rest of its TTL; expired entries are compacted away;
// a torn last record is ignored.
func TestReplayLogSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	var g lease.ReplayGuard
	l, err := openReplayLog(dir, "h1", &g, now)
	if err != nil {
		t.Fatal(err)
	}
	live := wire.TokenClaims{Lease: 41, ExpiresMs: now.Add(time.Minute).UnixMilli()}
	old := wire.TokenClaims{Lease: 42, ExpiresMs: now.Add(time.Second).UnixMilli()}
	for _, c := range []wire.TokenClaims{live, old} {
		if err := g.Use(c, now); err != nil {
			t.Fatal(err)
		}
		if err := l.add(c.Lease, c.ExpiresMs); err != nil {
			t.Fatal(err)
		}
	}
	l.close()
	path := filepath.Join(dir, "replay-h1.log")
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{1, 2, 3}) // a record torn by a crash
	f.Close()

	// The restarted volunteer, ten seconds later.
	later := now.Add(10 * time.Second)
	var g2 lease.ReplayGuard
	l2, err := openReplayLog(dir, "h1", &g2, later)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.close()
	if err := g2.Use(live, later); !errors.Is(err, lease.ErrReplayed) {
		t.Fatalf("token used before the restart accepted again: %v", err)
	}
	if g2.Len() != 1 {
		t.Fatalf("guard holds %d entries, want only the live one", g2.Len())
	}
	st, _ := os.Stat(path)
	if st.Size() != replayRecord {
		t.Fatalf("log not compacted: %d bytes", st.Size())
	}
	// Another host name on the same machine has its own log.
	var g3 lease.ReplayGuard
	l3, err := openReplayLog(dir, "h2", &g3, later)
	if err != nil {
		t.Fatal(err)
	}
	l3.close()
	if g3.Len() != 0 {
		t.Fatal("a second volunteer read the first one's log")
	}
}

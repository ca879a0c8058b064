package broker

import (
	"crypto/sha256"
	"testing"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/cli"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// TestResultCachePutsAndLookups: the broker stores only sound results,
// records the session's host as producer, and answers a malformed key
// with a miss.
func TestResultCachePutsAndLookups(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StateDir, cfg.CacheSize = t.TempDir(), cli.Size(1<<20)
	rc, err := openCache(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.store.Close()
	obj := []byte("an object")
	sum := sha256.Sum256(obj)
	key := make([]byte, 32)
	key[0] = 1
	for name, p := range map[string]*wire.CachePut{
		"short key":    {Key: key[:8], Object: obj, ObjectDigest: sum[:]},
		"failed":       {Key: key, Object: obj, ObjectDigest: sum[:], ExitCode: 1},
		"wrong digest": {Key: key, Object: []byte("another"), ObjectDigest: sum[:]},
		"no object":    {Key: key},
	} {
		rc.put("sun1", p)
		if n := rc.store.Stats().Entries; n != 0 {
			t.Fatalf("%s: stored (%d entries)", name, n)
		}
	}
	rc.put("sun1", &wire.CachePut{Key: key, Object: obj, ObjectDigest: sum[:], Stderr: []byte("note")})
	a := rc.lookup("alice", &wire.CacheLookup{Key: key})
	if !a.Found || string(a.Object) != string(obj) || a.Producer != "sun1" || string(a.Stderr) != "note" {
		t.Fatalf("hit %+v", a)
	}
	if a := rc.lookup("alice", &wire.CacheLookup{Key: key[:31]}); a.Found {
		t.Fatal("a malformed key hit")
	}
	st := rc.status()
	if st.Hits != 1 || len(st.Users) != 1 || st.Users[0].Hits != 1 || st.Users[0].Misses != 1 {
		t.Fatalf("status %+v", st)
	}
}

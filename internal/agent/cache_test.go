package agent

import (
	"crypto/sha256"
	"testing"

	"github.com/dcc-farm/dcc/pkg/wire"
)

// TestUsableHit: a hit is checked as a fresh result is, and keeps to what
// hosts may store.
func TestUsableHit(t *testing.T) {
	obj := []byte("object bytes")
	sum := sha256.Sum256(obj)
	good := func() *wire.CacheAnswer {
		return &wire.CacheAnswer{Found: true, Object: obj, ObjectDigest: sum[:], Producer: "sun1"}
	}
	pre := &wire.AgentCompile{Ext: ".i"}
	rewritten := &wire.AgentCompile{Ext: ".c", Lang: "c"}
	if !usableHit(pre, good()) {
		t.Fatal("a good hit refused")
	}
	for name, mod := range map[string]func(*wire.CacheAnswer){
		"miss":           func(a *wire.CacheAnswer) { a.Found = false },
		"wrong digest":   func(a *wire.CacheAnswer) { a.Object = []byte("other bytes") },
		"no producer":    func(a *wire.CacheAnswer) { a.Producer = "" },
		"failed":         func(a *wire.CacheAnswer) { a.ExitCode = 1 },
		"no object":      func(a *wire.CacheAnswer) { a.Object, a.ObjectDigest = nil, nil },
		"gcc diagnostic": func(a *wire.CacheAnswer) { a.Stderr = []byte("warning") },
	} {
		a := good()
		mod(a)
		if usableHit(pre, a) {
			t.Errorf("%s: used", name)
		}
	}
	if usableHit(pre, nil) {
		t.Error("nil answer used")
	}
	a := good()
	a.Stderr = []byte("w.c:1:5: warning: unused")
	if !usableHit(rewritten, a) {
		t.Error("clang's exact warnings on a rewritten source refused")
	}
}

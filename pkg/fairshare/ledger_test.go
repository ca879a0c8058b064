package fairshare

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestLedgerDecay(t *testing.T) {
	const hl = 10 * time.Minute
	tests := []struct {
		name string
		at   time.Duration
		want float64
	}{
		{"at charge", 0, 100},
		{"before charge", -time.Hour, 100},
		{"one half-life", hl, 50},
		{"two half-lives", 2 * hl, 25},
		{"half a half-life", hl / 2, 100 / math.Sqrt2},
		{"ten half-lives", 10 * hl, 100.0 / 1024},
		{"one nanosecond", 1, 100 * math.Exp2(-1/float64(hl))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLedger(hl)
			l.Charge("alice", 100, t0)
			if got := l.Usage("alice", t0.Add(tt.at)); !near(got, tt.want) {
				t.Errorf("Usage = %.12g, want %.12g", got, tt.want)
			}
		})
	}
}

func TestLedgerCharge(t *testing.T) {
	l := NewLedger(time.Hour)
	l.Charge("a", 10, t0)
	l.Charge("a", 10, t0)
	if got := l.Usage("a", t0); !near(got, 20) {
		t.Errorf("same-time charges: %g, want 20", got)
	}
	l.Charge("a", 10, t0.Add(time.Hour)) // 20 decays to 10, plus 10
	if got := l.Usage("a", t0.Add(time.Hour)); !near(got, 20) {
		t.Errorf("after an hour: %g, want 20", got)
	}
	if got := l.Usage("a", t0.Add(2*time.Hour)); !near(got, 10) {
		t.Errorf("after two hours: %g, want 10", got)
	}
	// Users are independent.
	l.Charge("b", 3, t0.Add(2*time.Hour))
	if got := l.Usage("b", t0.Add(2*time.Hour)); !near(got, 3) {
		t.Errorf("b = %g", got)
	}
	if got := l.Usage("nobody", t0); got != 0 {
		t.Errorf("unknown user usage %g", got)
	}
	// An earlier charge has decayed by the time of a later one.
	m := NewLedger(time.Hour)
	m.Charge("a", 5, t0.Add(10*time.Minute))
	m.Charge("a", 7, t0.Add(70*time.Minute))
	at := t0.Add(70 * time.Minute)
	want := 7 + 5*math.Exp2(-1)
	if got := m.Usage("a", at); !near(got, want) {
		t.Errorf("two charges: %g, want %g", got, want)
	}
}

func TestNewLedgerDefaultHalfLife(t *testing.T) {
	for _, hl := range []time.Duration{0, -time.Second} {
		if l := NewLedger(hl); l.HalfLife != time.Hour {
			t.Errorf("NewLedger(%v).HalfLife = %v, want 1h", hl, l.HalfLife)
		}
	}
	if l := NewLedger(time.Minute); l.HalfLife != time.Minute {
		t.Errorf("HalfLife %v", l.HalfLife)
	}
}

func TestLedgerWeights(t *testing.T) {
	l := NewLedger(time.Hour)
	tests := []struct {
		set, want float64
	}{
		{2, 2}, {0.5, 0.5}, {0, 1}, {-3, 1}, {7, 7},
	}
	for _, tt := range tests {
		l.SetWeight("u", tt.set)
		if got := l.Weight("u"); got != tt.want {
			t.Errorf("SetWeight(%g): Weight = %g, want %g", tt.set, got, tt.want)
		}
	}
	if got := l.Weight("nobody"); got != 1 {
		t.Errorf("default weight %g", got)
	}
	// A weight set before any charge survives charging, and vice versa.
	l.SetWeight("w", 3)
	l.Charge("w", 4, t0)
	l.SetWeight("w", 5)
	if l.Weight("w") != 5 || !near(l.Usage("w", t0), 4) {
		t.Errorf("weight %g usage %g", l.Weight("w"), l.Usage("w", t0))
	}
}

func TestLedgerSetWeightsReplaces(t *testing.T) {
	l := NewLedger(time.Hour)
	l.SetWeights(map[string]float64{"vic": 2, "ann": 3})
	l.Charge("vic", 10, t0)
	// The farm file drops vic's line: vic is back to 1, ann changes.
	l.SetWeights(map[string]float64{"ann": 0.5})
	if l.Weight("vic") != 1 || l.Weight("ann") != 0.5 {
		t.Fatalf("weights after reload: vic %g ann %g", l.Weight("vic"), l.Weight("ann"))
	}
	if !near(l.Usage("vic", t0), 10) {
		t.Fatalf("SetWeights touched usage: %g", l.Usage("vic", t0))
	}
	if w := l.Weights(); len(w) != 1 || w["ann"] != 0.5 {
		t.Fatalf("Weights() = %v", w)
	}
}

func TestLedgerSnapshotRestore(t *testing.T) {
	l := NewLedger(30 * time.Minute)
	l.Charge("alice", 100, t0)
	l.Charge("bob", 40, t0.Add(10*time.Minute))
	l.SetWeight("bob", 2)
	snap := l.Snapshot()

	check := func(t *testing.T, r *Ledger) {
		t.Helper()
		for _, u := range []string{"alice", "bob", "dave"} {
			for _, d := range []time.Duration{0, 10 * time.Minute, 2 * time.Hour} {
				at := t0.Add(d)
				if a, b := l.Usage(u, at), r.Usage(u, at); !near(b, a) {
					t.Errorf("%s at +%v: restored usage %g, original %g", u, d, b, a)
				}
			}
		}
		// Weights are the farm file's, never restored from saved state.
		if r.Weight("bob") != 1 {
			t.Errorf("restored a weight: bob %g", r.Weight("bob"))
		}
		got, want := r.Users(), l.Users()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("users %v, want %v", got, want)
		}
	}
	t.Run("direct", func(t *testing.T) {
		r := NewLedger(30 * time.Minute)
		r.Charge("stale", 1, t0) // replaced by Restore
		r.Restore(snap)
		check(t, r)
		if r.Usage("stale", t0) != 0 {
			t.Error("Restore kept an account not in the snapshot")
		}
	})
	t.Run("json", func(t *testing.T) {
		b, err := json.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]Account
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		r := NewLedger(30 * time.Minute)
		r.Restore(back)
		check(t, r)
	})
	t.Run("old state with weights", func(t *testing.T) {
		// State written before weights left the ledger carries a weight
		// field: it is ignored.
		var back map[string]Account
		if err := json.Unmarshal([]byte(`{"vic":{"usage":5,"at":"2026-01-01T00:00:00Z","weight":4}}`), &back); err != nil {
			t.Fatal(err)
		}
		r := NewLedger(time.Hour)
		r.Restore(back)
		if r.Weight("vic") != 1 || r.Usage("vic", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) != 5 {
			t.Errorf("weight %g usage %g", r.Weight("vic"), r.Usage("vic", t0))
		}
	})
	t.Run("snapshot is a copy", func(t *testing.T) {
		s := l.Snapshot()
		a := s["alice"]
		a.Usage = 1e9
		s["alice"] = a
		delete(s, "bob")
		if l.Usage("alice", t0) != 100 {
			t.Error("changing a snapshot changed the ledger")
		}
		r := NewLedger(time.Hour)
		r.Restore(s)
		s["zed"] = Account{Usage: 5, At: t0}
		if r.Usage("zed", t0) != 0 {
			t.Error("Restore keeps a reference to the snapshot map")
		}
	})
}

func TestLedgerPrune(t *testing.T) {
	l := NewLedger(time.Minute)
	l.Charge("old", 1, t0)
	l.Charge("busy", 1, t0)
	l.Charge("recent", 1, t0.Add(30*time.Minute))
	now := t0.Add(30 * time.Minute) // "old" has halved 30 times: ~1e-9
	gone := l.Prune(now, func(u string) bool { return u == "busy" })
	if !slices.Equal(gone, []string{"old"}) {
		t.Fatalf("pruned %v, want [old]", gone)
	}
	got := l.Users()
	slices.Sort(got)
	if !slices.Equal(got, []string{"busy", "recent"}) {
		t.Fatalf("kept %v", got)
	}
	if l.Prune(now, nil); len(l.Users()) != 1 {
		t.Fatalf("without keep, busy should go too: %v", l.Users())
	}
}

package scheduler

import (
	"strings"
	"testing"
	"time"
)

// A retry that avoids the host it failed on goes to another host offering
// the compiler, or waits; it never lands on the avoided host, while a plain
// request still may.
func TestAvoidHost(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := New(DefaultConfig(), 1)
	fp := "x86_64-linux-gnu gcc version 12"
	for _, h := range []struct {
		name  string
		power float64
	}{{"fast", 4}, {"slow", 1}} {
		s.SetFarmHost(h.name, 2, h.power, 1, nil, now)
		s.Connect(h.name, Registration{Addr: h.name + ":1", CPUs: 2, Slots: 1, Compilers: map[string]string{fp: "x86_64-linux-gnu"}}, now)
		s.UpdateLoad(h.name, Load{Available: true}, now)
	}
	s.Enqueue(Request{ID: 1, User: "u", Fingerprint: fp, Avoid: "fast"}, now)
	g := s.Dispatch(now)
	if len(g) != 1 || g[0].Lease.Host != "slow" {
		t.Fatalf("retry avoiding fast got %+v, want slow", g)
	}
	// slow is full now: a request avoiding fast waits, a plain one takes fast.
	s.Enqueue(Request{ID: 2, User: "u", Fingerprint: fp, Avoid: "fast"}, now)
	s.Enqueue(Request{ID: 3, User: "v", Fingerprint: fp}, now)
	g = s.Dispatch(now)
	if len(g) != 1 || g[0].Request != 3 || g[0].Lease.Host != "fast" {
		t.Fatalf("got %+v, want request 3 on fast", g)
	}
	if off, use := s.Offered(fp, "fast"); off != 1 || use != 1 {
		t.Fatalf("Offered except fast = %d, %d; want 1, 1", off, use)
	}
	if off, _ := s.Offered(fp, ""); off != 2 {
		t.Fatalf("Offered = %d, want 2", off)
	}
}

// TestMismatchEvidence: wrong-object reports count once per reporter; two
// reporters put a host on probation, three block it with the reason
// named; one reporter repeating itself changes nothing; evidence expires.
func TestMismatchEvidence(t *testing.T) {
	s := New(DefaultConfig(), 1)
	s.SetFarmHost("h", 4, 2, 4, nil, t0)
	s.Connect("h", Registration{Addr: "a", CPUs: 4, Slots: 4, Compilers: map[string]string{"fp": "x86"}}, t0)
	s.UpdateLoad("h", Load{Available: true}, t0)
	state := func() string { h, _ := s.Host("h"); return string(h.State) }
	for i := 0; i < 5; i++ {
		n, counted := s.ReportMismatch("h", "mallory", t0)
		if n != 1 || counted != (i == 0) {
			t.Fatalf("report %d by one user: %d reporters, counted %v", i, n, counted)
		}
	}
	if st := state(); st != "healthy" {
		t.Fatalf("one reporter moved the host to %s", st)
	}
	s.ReportMismatch("h", "bob", t0)
	if st := state(); st != "probation" {
		t.Fatalf("two reporters: %s, want probation", st)
	}
	s.ReportMismatch("h", "carol", t0)
	h, _ := s.Host("h")
	if h.State != "blocked" || !strings.Contains(h.Note, "3 users (DCC_VERIFY)") {
		t.Fatalf("three reporters: %s %q", h.State, h.Note)
	}
	// An hour later the old evidence is gone: a new reporter alone counts 1.
	later := t0.Add(2 * time.Hour)
	s.Tick(later)
	if n, _ := s.ReportMismatch("h", "dave", later); n != 1 {
		t.Fatalf("evidence did not expire: %d reporters", n)
	}
}

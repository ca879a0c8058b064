package scheduler

import (
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

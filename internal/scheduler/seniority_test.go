package scheduler

import (
	"testing"
	"time"

	"github.com/dcc-farm/dcc/pkg/lease"
)

// Two users who both want more than half of a 12-slot farm: "old" since
// t0, "new" since t0+10s. Each freed slot goes to the lowest score, and the
// user whose lease ended asks again, so both stay backlogged. Without
// seniority the farm settles at 6/6; with Seniority 1 the older user is
// scored with twice its weight and holds about twice as many slots, and
// a light user's request still takes the next freed slot ahead of both.
func TestSeniority(t *testing.T) {
	for _, tt := range []struct {
		name      string
		seniority float64
		oldMin    int
		oldMax    int
	}{
		{"off", 0, 6, 6},
		{"on", 1, 8, 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Policy.UsageFactor = 0
			cfg.Policy.Seniority = tt.seniority
			s := New(cfg, 1)
			addHost(t, s, "h", 1, 12, fpA)
			id := uint64(0)
			ask := func(user string, now time.Time) {
				id++
				s.Enqueue(Request{ID: id, User: user, Fingerprint: fpA}, now)
			}
			var leases []lease.ID // oldest grant first
			dispatch := func(now time.Time) []Grant {
				gs := s.Dispatch(now)
				for _, g := range gs {
					leases = append(leases, g.Lease.ID)
				}
				return gs
			}
			for range 20 {
				ask("old", t0)
			}
			dispatch(t0)
			now := t0.Add(10 * time.Second)
			for range 20 {
				ask("new", now)
			}
			for step := range 200 {
				now = now.Add(100 * time.Millisecond)
				l, ok := s.Release(leases[0], now)
				if !ok {
					t.Fatalf("step %d: release failed", step)
				}
				leases = leases[1:]
				ask(l.User, now)
				if gs := dispatch(now); len(gs) != 1 {
					t.Fatalf("step %d: %d grants", step, len(gs))
				}
			}
			old, _ := s.UserRunning("old")
			nw, _ := s.UserRunning("new")
			if old < tt.oldMin || old > tt.oldMax || old+nw != 12 {
				t.Errorf("old holds %d, new %d; want old in [%d, %d]", old, nw, tt.oldMin, tt.oldMax)
			}
			wantF := 1 + tt.seniority
			if f := s.Seniority("old", now); f != wantF {
				t.Errorf("Seniority(old) = %g, want %g", f, wantF)
			}
			if f := s.Seniority("new", now); f != 1 {
				t.Errorf("Seniority(new) = %g, want 1", f)
			}
			// A light user wants one slot, far below its fair share: it is
			// served first whatever the seniority of the others.
			now = now.Add(time.Millisecond)
			s.Enqueue(Request{ID: 9999, User: "light", Fingerprint: fpA}, now)
			s.Release(leases[0], now)
			if gs := s.Dispatch(now); len(gs) != 1 || gs[0].Lease.User != "light" {
				t.Errorf("freed slot went to %+v, want light", gs)
			}
			checkInvariants(t, s, "seniority")
		})
	}
}

// A busy period ends when the user holds nothing and waits for nothing;
// its next request starts a new one, so yesterday's build earns no
// seniority today. Users who started less than a mean lease time apart
// (here 5 ms, against 1 s) share a rank.
func TestSeniorityBusyPeriod(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 4, fpA)
	s.Enqueue(Request{ID: 1, User: "a", Fingerprint: fpA}, t0)
	gs := s.Dispatch(t0)
	s.Release(gs[0].Lease.ID, t0.Add(time.Second)) // a is idle again
	later := t0.Add(time.Hour)
	for i := uint64(0); i < 6; i++ {
		s.Enqueue(Request{ID: 10 + i, User: "b", Fingerprint: fpA}, later)
		s.Enqueue(Request{ID: 20 + i, User: "a", Fingerprint: fpA}, later.Add(5*time.Millisecond))
	}
	now := later.Add(10 * time.Millisecond)
	s.Dispatch(now)
	// Both backlogged with leases, busy since about `later`: no tilt.
	if fa, fb := s.Seniority("a", now), s.Seniority("b", now); fa != 1 || fb != 1 {
		t.Errorf("seniority a %g b %g, want 1 and 1 (same rank)", fa, fb)
	}
	// c starts well after them: a and b share the senior rank.
	for i := uint64(0); i < 6; i++ {
		s.Enqueue(Request{ID: 30 + i, User: "c", Fingerprint: fpA}, later.Add(time.Minute))
	}
	now = later.Add(time.Minute + time.Second)
	s.Release(s.Leases().OfHost("h")[0], now)
	s.Dispatch(now)
	fa, fb, fc := s.Seniority("a", now), s.Seniority("b", now), s.Seniority("c", now)
	if fa != 2 || fb != 2 || fc != 1 {
		t.Errorf("seniority a %g b %g c %g, want 2, 2, 1", fa, fb, fc)
	}
}

package scheduler

import (
	"math"
	"testing"
	"time"
)

func TestCompileLocally(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name string
		q    LocalQuery
		want bool
	}{
		{"no free slot", LocalQuery{Wait: 10 * s, Gain: s}, false},
		{"wait longer than the gain", LocalQuery{SlotFree: true, Wait: 2 * s, Gain: s}, true},
		{"wait equal to the gain", LocalQuery{SlotFree: true, Wait: s, Gain: s}, false},
		{"wait shorter than the gain", LocalQuery{SlotFree: true, Wait: s / 2, Gain: s}, false},
		{"zero gain, some wait", LocalQuery{SlotFree: true, Wait: time.Millisecond}, true},
		{"no estimate yet", LocalQuery{SlotFree: true, Wait: 0, Gain: 0, Backlogged: true, OthersWaiting: 5}, false},
		{"backlogged with others waiting", LocalQuery{SlotFree: true, Wait: s / 2, Gain: s, Backlogged: true, OthersWaiting: 1}, true},
		{"backlogged, last one waiting", LocalQuery{SlotFree: true, Wait: s / 2, Gain: s, Backlogged: true}, false},
		{"others waiting, not backlogged", LocalQuery{SlotFree: true, Wait: s / 2, Gain: s, OthersWaiting: 9}, false},
		{"backlogged, no free slot", LocalQuery{Wait: s / 2, Gain: s, Backlogged: true, OthersWaiting: 9}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CompileLocally(tt.q); got != tt.want {
				t.Errorf("CompileLocally(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestDeclineGrant(t *testing.T) {
	tests := []struct {
		name              string
		host, local       float64
		free, wantDecline bool
	}{
		{"slower host", 0.67, 1, true, true},
		{"as fast", 1, 1, true, true},
		{"faster host", 3, 1, true, false},
		{"no free slot", 0.5, 1, false, false},
		{"no local machine", 0.5, 0, true, false},
		{"strong workstation", 1, 1.5, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeclineGrant(tt.host, tt.local, tt.free); got != tt.wantDecline {
				t.Errorf("DeclineGrant(%g, %g, %v) = %v", tt.host, tt.local, tt.free, got)
			}
		})
	}
}

// Grant.Speed is the job's expected speed on its host: power while a CPU
// is free, shared once the host's runnable load exceeds its CPUs.
func TestGrantSpeed(t *testing.T) {
	s := newSched()
	s.SetFarmHost("h", 2, 3, 4, nil, t0)
	s.Connect("h", Registration{CPUs: 2, Slots: 4, Compilers: map[string]string{fpA: "x86_64-linux-gnu"}}, t0)
	s.UpdateLoad("h", Load{Available: true}, t0)
	for i := uint64(1); i <= 4; i++ {
		s.Enqueue(Request{ID: i, User: "u", Fingerprint: fpA}, t0)
	}
	gs := s.Dispatch(t0)
	want := []float64{3, 3, 3 * 2.0 / 3, 3 * 2.0 / 4}
	if len(gs) != len(want) {
		t.Fatalf("granted %d", len(gs))
	}
	for i, g := range gs {
		if math.Abs(g.Speed-want[i]) > 1e-9 {
			t.Errorf("grant %d: speed %g, want %g", i, g.Speed, want[i])
		}
	}
}

// LocalQuery reports the broker's side: the wait estimate, whether the
// user holds at least an equal share, and its other waiting requests.
func TestLocalQuery(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 4, fpA)
	// Teach the scheduler a mean lease time of 1 s.
	s.Enqueue(Request{ID: 1, User: "warm", Fingerprint: fpA}, t0)
	g := s.Dispatch(t0)
	s.Release(g[0].Lease.ID, t0.Add(time.Second))
	now := t0.Add(time.Second)
	// heavy holds 3 of 4 slots, light 1; heavy has 3 more waiting, light 1.
	for i := uint64(10); i < 13; i++ {
		s.Enqueue(Request{ID: i, User: "heavy", Fingerprint: fpA}, now)
	}
	s.Enqueue(Request{ID: 20, User: "light", Fingerprint: fpA}, now)
	if n := len(s.Dispatch(now)); n != 4 {
		t.Fatalf("granted %d", n)
	}
	for i := uint64(13); i < 16; i++ {
		s.Enqueue(Request{ID: i, User: "heavy", Fingerprint: fpA}, now)
	}
	s.Enqueue(Request{ID: 21, User: "light", Fingerprint: fpA}, now)
	q := s.LocalQuery(15, now)
	if !q.Backlogged || q.OthersWaiting != 2 || q.Wait <= 0 {
		t.Errorf("heavy's newest: %+v, want backlogged, 2 others waiting, a wait", q)
	}
	if q.SlotFree || q.Gain != 0 {
		t.Errorf("client fields filled by the scheduler: %+v", q)
	}
	if q := s.LocalQuery(21, now); q.Backlogged || q.OthersWaiting != 0 {
		t.Errorf("light: %+v, want not backlogged, nobody else waiting", q)
	}
	if q := s.LocalQuery(999, now); q != (LocalQuery{}) {
		t.Errorf("unknown request: %+v", q)
	}
	// The broker's answer for heavy's newest request with a free slot and
	// a 5 s gain: the wait is short, but heavy is throughput-bound.
	q.SlotFree, q.Gain = true, 5*time.Second
	if !CompileLocally(q) {
		t.Errorf("heavy's newest stays queued: %+v", q)
	}
}

// A declined grant frees its slot without charging the user, without a
// lease-time sample and without a host outcome.
func TestDecline(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 1, fpA)
	s.Enqueue(Request{ID: 1, User: "u", Fingerprint: fpA}, t0)
	gs := s.Dispatch(t0)
	if len(gs) != 1 {
		t.Fatal("no grant")
	}
	later := t0.Add(3 * time.Second)
	l, ok := s.Decline(gs[0].Lease.ID, later)
	if !ok || l.User != "u" {
		t.Fatalf("Decline = %+v %v", l, ok)
	}
	if _, ok := s.Decline(gs[0].Lease.ID, later); ok {
		t.Error("declined twice")
	}
	if u := s.Ledger().Usage("u", later); u != 0 {
		t.Errorf("usage %g after a declined grant", u)
	}
	if s.MeanLease() != 0 {
		t.Errorf("mean lease %v after a declined grant", s.MeanLease())
	}
	h, _ := s.Host("h")
	if h.Busy != 0 || h.JobsDone != 0 || h.Failures != 0 {
		t.Errorf("host after decline: busy %d done %d failures %d", h.Busy, h.JobsDone, h.Failures)
	}
	s.Enqueue(Request{ID: 2, User: "v", Fingerprint: fpA}, later)
	if gs := s.Dispatch(later); len(gs) != 1 || gs[0].Lease.User != "v" {
		t.Errorf("the freed slot was not granted again: %+v", gs)
	}
	checkInvariants(t, s, "decline")
}

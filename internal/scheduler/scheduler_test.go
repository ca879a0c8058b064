package scheduler

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/tiering"
)

var t0 = time.Unix(1_900_000_000, 0)

const (
	fpA = "x86_64-linux-gnu gcc version 12.2.0 (Debian 12.2.0-14)"
	fpB = "x86_64-linux-gnu Debian clang version 14.0.6"
)

// addHost puts a host in the farm, connects it and reports it available.
func addHost(t *testing.T, s *Scheduler, name string, power float64, slots int, fps ...string) {
	t.Helper()
	comps := map[string]string{}
	for _, fp := range fps {
		comps[fp] = "x86_64-linux-gnu"
	}
	s.SetFarmHost(name, slots, power, 0, nil, t0)
	s.Connect(name, Registration{Addr: name + ":3632", CPUs: slots, Slots: slots, Compilers: comps}, t0)
	s.UpdateLoad(name, Load{Available: true}, t0)
}

func newSched() *Scheduler {
	cfg := DefaultConfig()
	cfg.Seed = 42
	return New(cfg, 1)
}

func state(t *testing.T, s *Scheduler, name string) tiering.State {
	t.Helper()
	h, ok := s.Host(name)
	if !ok {
		t.Fatalf("host %s unknown", name)
	}
	return h.State
}

func tier(t *testing.T, s *Scheduler, name string) int {
	t.Helper()
	v, ok := s.Verdict(name)
	if !ok {
		t.Fatalf("host %s unknown", name)
	}
	return v.Tier
}

// checkInvariants verifies the documented invariants against the lease table.
func checkInvariants(t *testing.T, s *Scheduler, where string) {
	t.Helper()
	perHost := map[string]int{}
	perUser := map[string]int{}
	powerUser := map[string]float64{}
	s.Leases().Each(func(l *lease.Lease) {
		perHost[l.Host]++
		perUser[l.User]++
		powerUser[l.User] += l.Power
	})
	for _, name := range s.HostNames() {
		h, _ := s.Host(name)
		if h.Busy != perHost[name] {
			t.Fatalf("%s: host %s Busy=%d, %d leases on it", where, name, h.Busy, perHost[name])
		}
		if h.Busy > h.Slots {
			t.Fatalf("%s: host %s Busy=%d > Slots=%d", where, name, h.Busy, h.Slots)
		}
	}
	sum := 0
	for _, u := range s.RunningUsers() {
		n, p := s.UserRunning(u)
		if n != perUser[u] {
			t.Fatalf("%s: UserRunning(%s)=%d, %d leases", where, u, n, perUser[u])
		}
		if math.Abs(p-powerUser[u]) > 1e-9 {
			t.Fatalf("%s: UserRunning(%s) power=%g, leases sum to %g", where, u, p, powerUser[u])
		}
		sum += n
	}
	for u, n := range perUser {
		if got, _ := s.UserRunning(u); got != n {
			t.Fatalf("%s: user %s has %d leases but UserRunning=%d", where, u, n, got)
		}
	}
	if sum != s.Leases().Len() {
		t.Fatalf("%s: sum of UserRunning=%d, Leases().Len()=%d", where, sum, s.Leases().Len())
	}
}

func TestTierFromFarmConnectLoad(t *testing.T) {
	tests := []struct {
		name      string
		power     float64
		cpus      int
		inFarm    bool
		connect   bool
		load      *Load
		wantTier  int
		wantState tiering.State
	}{
		{"power 3 idle", 3, 4, true, true, &Load{Available: true}, 3, tiering.Healthy},
		{"power 0.5 at least tier 1", 0.5, 4, true, true, &Load{Available: true}, 1, tiering.Healthy},
		{"power 2.9 floors", 2.9, 4, true, true, &Load{Available: true}, 2, tiering.Healthy},
		{"overloaded drops one", 3, 4, true, true, &Load{Load1: 4 * 1.5, Available: true}, 2, tiering.Healthy},
		{"saturated tier 0", 3, 4, true, true, &Load{Load1: 4 * 3, Available: true}, 0, tiering.Healthy},
		{"NaN load fails closed", 3, 4, true, true, &Load{Load1: math.NaN(), Available: true}, 0, tiering.Healthy},
		{"negative load fails closed", 3, 4, true, true, &Load{Load1: -1, Available: true}, 0, tiering.Healthy},
		{"unavailable drains", 3, 4, true, true, &Load{Available: false, Reason: "owner active"}, 0, tiering.Draining},
		{"connected, no load report yet", 3, 4, true, true, nil, 0, tiering.Draining},
		{"farm host not connected", 3, 4, true, false, nil, 0, tiering.Gone},
		{"connected, not in farm", 3, 4, false, true, &Load{Available: true}, 0, tiering.Gone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched()
			if tt.inFarm {
				s.SetFarmHost("h", tt.cpus, tt.power, 0, nil, t0)
			}
			if tt.connect {
				s.Connect("h", Registration{CPUs: tt.cpus, Slots: tt.cpus, Compilers: map[string]string{fpA: "x86_64-linux-gnu"}}, t0)
			}
			if tt.load != nil {
				s.UpdateLoad("h", *tt.load, t0)
			}
			if got := tier(t, s, "h"); got != tt.wantTier {
				v, _ := s.Verdict("h")
				t.Errorf("tier = %d (%s), want %d", got, v.Reason, tt.wantTier)
			}
			if got := state(t, s, "h"); got != tt.wantState {
				t.Errorf("state = %s, want %s", got, tt.wantState)
			}
		})
	}
}

func TestUpdateLoadUnknownHostIgnored(t *testing.T) {
	s := newSched()
	s.UpdateLoad("nobody", Load{Available: true}, t0)
	if len(s.HostNames()) != 0 {
		t.Fatalf("UpdateLoad of an unknown host created %v", s.HostNames())
	}
}

func TestSlotsCappedByFarmFile(t *testing.T) {
	tests := []struct {
		name                   string
		farmSlots, volunteered int
		want                   int
	}{
		{"no farm cap", 0, 6, 6},
		{"farm caps lower", 2, 6, 2},
		{"farm cap higher than offered", 8, 6, 6},
		{"volunteer offers 0, farm says 3", 3, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched()
			s.SetFarmHost("h", 8, 1, tt.farmSlots, nil, t0)
			s.Connect("h", Registration{Slots: tt.volunteered, Compilers: map[string]string{fpA: "t"}}, t0)
			s.UpdateLoad("h", Load{Available: true}, t0)
			h, _ := s.Host("h")
			if h.Slots != tt.want {
				t.Fatalf("Slots = %d, want %d", h.Slots, tt.want)
			}
			for i := range 20 {
				s.Enqueue(Request{ID: uint64(i + 1), User: "u", Fingerprint: fpA, Holder: 1}, t0)
			}
			if got := len(s.Dispatch(t0)); got != tt.want {
				t.Fatalf("Dispatch granted %d, want %d", got, tt.want)
			}
			checkInvariants(t, s, tt.name)
		})
	}
}

// A farm-file reload that lowers slots= for a host that is already
// connected must take effect without the volunteer reconnecting.
func TestFarmReloadLowersSlotsOfConnectedHost(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 8, fpA)
	s.SetFarmHost("h", 8, 1, 2, nil, t0) // farm file edited: slots=2
	for i := range 10 {
		s.Enqueue(Request{ID: uint64(i + 1), User: "u", Fingerprint: fpA, Holder: 1}, t0)
	}
	got := len(s.Dispatch(t0))
	if got == 8 {
		t.Fatal("scheduler.SetFarmHost records FarmSlots but does not re-cap Host.Slots of a connected host; a reload lowering slots= is ignored until the volunteer reconnects (granted 8, want 2)")
	}
	if got != 2 {
		t.Fatalf("granted %d after farm file lowered slots to 2", got)
	}
}

func TestDispatchMatchesFingerprint(t *testing.T) {
	s := newSched()
	addHost(t, s, "gcc-host", 1, 4, fpA)
	addHost(t, s, "clang-host", 1, 4, fpB)
	id := uint64(0)
	want := map[uint64]string{}
	for i := range 6 {
		for _, fp := range []string{fpA, fpB} {
			id++
			s.Enqueue(Request{ID: id, User: fmt.Sprint("u", i%3), Fingerprint: fp, Holder: 1}, t0)
			if fp == fpA {
				want[id] = "gcc-host"
			} else {
				want[id] = "clang-host"
			}
		}
	}
	gs := s.Dispatch(t0)
	if len(gs) != 8 {
		t.Fatalf("granted %d, want 8 (4 slots on each host)", len(gs))
	}
	for _, g := range gs {
		if g.Lease.Host != want[g.Request] {
			t.Errorf("request %d placed on %s, want %s", g.Request, g.Lease.Host, want[g.Request])
		}
	}
	for _, h := range []string{"gcc-host", "clang-host"} {
		hi, _ := s.Host(h)
		if hi.Busy != 4 || hi.Busy > hi.Slots {
			t.Errorf("%s busy %d/%d", h, hi.Busy, hi.Slots)
		}
	}
	if s.Queue().Len() != 4 {
		t.Errorf("queue %d, want 4", s.Queue().Len())
	}
	if more := s.Dispatch(t0); len(more) != 0 {
		t.Errorf("full farm granted %d more", len(more))
	}
	checkInvariants(t, s, "after dispatch")
}

func TestDispatchNeverExceedsSlots(t *testing.T) {
	tests := []struct {
		name     string
		slots    []int
		requests int
	}{
		{"one host, more requests", []int{3}, 10},
		{"three hosts", []int{1, 2, 5}, 20},
		{"fewer requests than slots", []int{4, 4}, 5},
		{"zero-slot host", []int{0, 2}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched()
			total := 0
			for i, n := range tt.slots {
				name := fmt.Sprint("h", i)
				s.SetFarmHost(name, max(n, 1), 2, 0, nil, t0)
				s.Connect(name, Registration{Slots: n, Compilers: map[string]string{fpA: "t"}}, t0)
				s.UpdateLoad(name, Load{Available: true}, t0)
				total += n
			}
			for i := range tt.requests {
				s.Enqueue(Request{ID: uint64(i + 1), User: fmt.Sprint("u", i%4), Fingerprint: fpA}, t0)
			}
			granted := 0
			for round := range 3 { // repeated Dispatch must not add more
				granted += len(s.Dispatch(t0.Add(time.Duration(round) * time.Second)))
				checkInvariants(t, s, fmt.Sprint("round ", round))
			}
			if want := min(total, tt.requests); granted != want {
				t.Fatalf("granted %d, want %d", granted, want)
			}
			if s.Queue().Len() != tt.requests-granted {
				t.Fatalf("queue %d, want %d", s.Queue().Len(), tt.requests-granted)
			}
		})
	}
}

func TestUnofferedCompilerStaysQueued(t *testing.T) {
	tests := []struct {
		name      string
		blockUser string // user of the unplaceable request
	}{
		{"same user", "alice"},
		{"other user", "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched()
			addHost(t, s, "h", 1, 4, fpA)
			s.Enqueue(Request{ID: 1, User: tt.blockUser, Fingerprint: "nobody-offers-this"}, t0)
			for i := uint64(2); i <= 4; i++ {
				s.Enqueue(Request{ID: i, User: "alice", Fingerprint: fpA}, t0.Add(time.Duration(i)*time.Millisecond))
			}
			gs := s.Dispatch(t0.Add(time.Second))
			if len(gs) != 3 {
				t.Fatalf("granted %d, want 3", len(gs))
			}
			for _, g := range gs {
				if g.Request == 1 {
					t.Fatal("request for an unoffered compiler was granted")
				}
			}
			if _, ok := s.Queue().Get(1); !ok {
				t.Fatal("request 1 left the queue")
			}
			if s.Queue().Len() != 1 {
				t.Fatalf("queue %d, want 1", s.Queue().Len())
			}
			if s.Compatible("nobody-offers-this") {
				t.Error("Compatible(unoffered) = true")
			}
			if !s.Compatible(fpA) {
				t.Error("Compatible(fpA) = false")
			}
		})
	}
}

func TestGrantFields(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 3, 2, fpA)
	s.Enqueue(Request{ID: 7, User: "alice", Fingerprint: fpA, Holder: 99, File: "foo.c"}, t0)
	now := t0.Add(1500 * time.Millisecond)
	gs := s.Dispatch(now)
	if len(gs) != 1 {
		t.Fatalf("granted %d", len(gs))
	}
	g := gs[0]
	l := g.Lease
	if g.Request != 7 || g.Wait != 1500*time.Millisecond {
		t.Errorf("grant %+v", g)
	}
	if l.User != "alice" || l.Host != "h" || l.Holder != 99 || l.File != "foo.c" || l.Power != 3 || l.Tier != 3 {
		t.Errorf("lease %+v", l)
	}
	if !l.Granted.Equal(now) || !l.Expires.Equal(now.Add(s.Config().LeaseTTL)) {
		t.Errorf("lease times %v %v", l.Granted, l.Expires)
	}
	if n, p := s.UserRunning("alice"); n != 1 || p != 3 {
		t.Errorf("UserRunning = %d, %g", n, p)
	}
}

// A user holding many slots waits behind a user holding none.
func TestFairOrderIdleUserFirst(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Policy.UsageFactor = 0 // only what users hold now counts
	s := New(cfg, 1)
	addHost(t, s, "h", 1, 4, fpA)
	for i := uint64(1); i <= 8; i++ {
		s.Enqueue(Request{ID: i, User: "heavy", Fingerprint: fpA, Holder: 1}, t0)
	}
	gs := s.Dispatch(t0)
	if len(gs) != 4 {
		t.Fatalf("granted %d", len(gs))
	}
	first := gs[0].Lease.ID
	// light arrives later than all of heavy's waiting requests.
	s.Enqueue(Request{ID: 100, User: "light", Fingerprint: fpA, Holder: 2}, t0.Add(time.Second))
	if _, ok := s.Release(first, t0.Add(2*time.Second)); !ok {
		t.Fatal("release failed")
	}
	gs = s.Dispatch(t0.Add(2 * time.Second))
	if len(gs) != 1 || gs[0].Request != 100 || gs[0].Lease.User != "light" {
		t.Fatalf("freed slot went to %+v, want light's request 100", gs)
	}
	checkInvariants(t, s, "fair")
}

func TestWeights(t *testing.T) {
	tests := []struct {
		name             string
		weightA, weightB float64
		wantA, wantB     int
	}{
		{"equal", 1, 1, 2, 2},
		{"B weight 3", 1, 3, 1, 3},
		{"A weight 3", 3, 1, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched()
			s.Ledger().SetWeight("A", tt.weightA)
			s.Ledger().SetWeight("B", tt.weightB)
			addHost(t, s, "h", 1, 4, fpA)
			for i := uint64(1); i <= 4; i++ {
				s.Enqueue(Request{ID: i, User: "A", Fingerprint: fpA}, t0)
				s.Enqueue(Request{ID: 10 + i, User: "B", Fingerprint: fpA}, t0)
			}
			s.Dispatch(t0)
			a, _ := s.UserRunning("A")
			b, _ := s.UserRunning("B")
			if a != tt.wantA || b != tt.wantB {
				t.Fatalf("A=%d B=%d, want A=%d B=%d", a, b, tt.wantA, tt.wantB)
			}
		})
	}
}

// Recent usage tilts the order: of two users holding nothing, the one who
// used the farm less recently goes first.
func TestUsageTilt(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 1, fpA)
	s.Enqueue(Request{ID: 1, User: "used", Fingerprint: fpA}, t0)
	gs := s.Dispatch(t0)
	if len(gs) != 1 {
		t.Fatal("no grant")
	}
	now := t0.Add(10 * time.Minute)
	s.Release(gs[0].Lease.ID, now)
	s.Ledger().Charge("fresh", 1, now) // known to the ledger, little usage
	// "used" asks first, "fresh" later: usage, not arrival, decides.
	s.Enqueue(Request{ID: 2, User: "used", Fingerprint: fpA}, now)
	s.Enqueue(Request{ID: 3, User: "fresh", Fingerprint: fpA}, now.Add(time.Second))
	gs = s.Dispatch(now.Add(2 * time.Second))
	if len(gs) != 1 || gs[0].Lease.User != "fresh" {
		t.Fatalf("got %+v, want fresh first", gs)
	}
}

func TestDisconnectRevokes(t *testing.T) {
	tests := []struct {
		name   string
		remove func(s *Scheduler, now time.Time) []lease.Lease
		state  tiering.State
	}{
		{"Disconnect", func(s *Scheduler, now time.Time) []lease.Lease { return s.Disconnect("h1", now) }, tiering.Gone},
		{"RemoveFarmHost", func(s *Scheduler, now time.Time) []lease.Lease { return s.RemoveFarmHost("h1", now) }, tiering.Gone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched()
			addHost(t, s, "h1", 2, 3, fpA)
			for i := uint64(1); i <= 3; i++ {
				s.Enqueue(Request{ID: i, User: "alice", Fingerprint: fpA, Holder: 5}, t0)
			}
			if n := len(s.Dispatch(t0)); n != 3 {
				t.Fatalf("granted %d", n)
			}
			now := t0.Add(10 * time.Second)
			ls := tt.remove(s, now)
			if len(ls) != 3 {
				t.Fatalf("revoked %d, want 3", len(ls))
			}
			for _, l := range ls {
				if l.Host != "h1" || l.User != "alice" {
					t.Errorf("revoked %+v", l)
				}
			}
			if n, p := s.UserRunning("alice"); n != 0 || p != 0 {
				t.Errorf("UserRunning = %d, %g after revoke", n, p)
			}
			if len(s.RunningUsers()) != 0 {
				t.Errorf("RunningUsers = %v", s.RunningUsers())
			}
			if s.Leases().Len() != 0 {
				t.Errorf("%d leases left", s.Leases().Len())
			}
			h, _ := s.Host("h1")
			if h.Busy != 0 || h.State != tt.state || tier(t, s, "h1") != 0 {
				t.Errorf("host busy %d state %s tier %d", h.Busy, h.State, tier(t, s, "h1"))
			}
			// The revoked time was charged.
			if u := s.Ledger().Usage("alice", now); u <= 0 {
				t.Errorf("usage %g after 10 s on power 2", u)
			}
			// Nothing more goes there.
			s.Enqueue(Request{ID: 10, User: "bob", Fingerprint: fpA}, now)
			if gs := s.Dispatch(now); len(gs) != 0 {
				t.Errorf("granted on a removed host: %+v", gs)
			}
			if off, _ := s.Offered(fpA, ""); off != 0 {
				t.Errorf("Offered = %d after removal", off)
			}
			// Unknown hosts are a no-op.
			if ls := tt.remove(New(DefaultConfig(), 1), now); ls != nil {
				t.Errorf("unknown host returned %v", ls)
			}
			checkInvariants(t, s, tt.name)
		})
	}
}

func TestReconnectAfterDisconnect(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 2, fpA)
	s.Disconnect("h", t0)
	addHost(t, s, "h", 1, 2, fpA)
	if tier(t, s, "h") != 1 || state(t, s, "h") != tiering.Healthy {
		t.Fatalf("tier %d state %s after reconnect", tier(t, s, "h"), state(t, s, "h"))
	}
	s.Enqueue(Request{ID: 1, User: "u", Fingerprint: fpA}, t0)
	if len(s.Dispatch(t0)) != 1 {
		t.Fatal("no grant after reconnect")
	}
}

func TestReleaseHolder(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 4, fpA)
	for i := uint64(1); i <= 4; i++ {
		s.Enqueue(Request{ID: i, User: "u", Fingerprint: fpA, Holder: 1 + i%2}, t0)
	}
	s.Dispatch(t0)
	ls := s.ReleaseHolder(1, t0.Add(time.Second))
	if len(ls) != 2 {
		t.Fatalf("released %d, want 2", len(ls))
	}
	for _, l := range ls {
		if l.Holder != 1 {
			t.Errorf("released %+v", l)
		}
	}
	if n, _ := s.UserRunning("u"); n != 2 {
		t.Fatalf("UserRunning %d, want 2", n)
	}
	checkInvariants(t, s, "release holder")
}

func TestAdopt(t *testing.T) {
	// The broker restarted: a fresh scheduler learns the farm, the
	// volunteer reconnects and reports a running lease.
	s := newSched()
	addHost(t, s, "h", 2, 2, fpA)
	adopted := lease.Lease{ID: 5000, User: "alice", Host: "h", Holder: 77, Power: 99, Granted: t0, Expires: t0.Add(time.Second)}
	if !s.Adopt(adopted, t0) {
		t.Fatal("Adopt = false")
	}
	tests := []struct {
		name string
		l    lease.Lease
	}{
		{"already known", adopted},
		{"unknown host", lease.Lease{ID: 6000, User: "alice", Host: "nowhere", Granted: t0, Expires: t0.Add(time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s.Adopt(tt.l, t0) {
				t.Fatal("Adopt = true")
			}
		})
	}
	l, ok := s.Leases().Get(5000)
	if !ok {
		t.Fatal("adopted lease not in table")
	}
	if l.Holder != 0 {
		t.Errorf("adopted lease holder %d, want 0", l.Holder)
	}
	if l.Power != 2 {
		t.Errorf("adopted lease power %g, want the host's 2", l.Power)
	}
	if l.Expires.Before(t0.Add(s.Config().LeaseTTL)) {
		t.Errorf("adopted lease expires %v, before now+TTL", l.Expires)
	}
	if n, p := s.UserRunning("alice"); n != 1 || p != 2 {
		t.Errorf("UserRunning = %d, %g; want 1, 2", n, p)
	}
	if h, _ := s.Host("h"); h.Busy != 1 {
		t.Errorf("Busy = %d", h.Busy)
	}
	// Adopted leases count as running: alice (1 running) waits behind bob.
	s.Enqueue(Request{ID: 1, User: "alice", Fingerprint: fpA}, t0)
	s.Enqueue(Request{ID: 2, User: "bob", Fingerprint: fpA}, t0.Add(time.Second))
	gs := s.Dispatch(t0.Add(2 * time.Second))
	if len(gs) != 1 || gs[0].Lease.User != "bob" {
		t.Fatalf("granted %+v, want only bob's (one slot left)", gs)
	}
	if gs[0].Lease.ID <= 5000 {
		t.Errorf("new lease ID %d not above adopted 5000", gs[0].Lease.ID)
	}
	// Releasing the adopted lease frees its slot.
	if _, ok := s.Release(5000, t0.Add(3*time.Second)); !ok {
		t.Fatal("release adopted")
	}
	gs = s.Dispatch(t0.Add(3 * time.Second))
	if len(gs) != 1 || gs[0].Request != 1 {
		t.Fatalf("after release granted %+v", gs)
	}
	checkInvariants(t, s, "adopt")
}

func TestRenewAndExpiry(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LeaseTTL = 30 * time.Second
	s := New(cfg, 1)
	addHost(t, s, "h", 1, 2, fpA)
	s.Enqueue(Request{ID: 1, User: "u", Fingerprint: fpA}, t0)
	s.Enqueue(Request{ID: 2, User: "u", Fingerprint: fpA}, t0)
	gs := s.Dispatch(t0)
	if len(gs) != 2 {
		t.Fatal("grants")
	}
	renewed, idle := gs[0].Lease.ID, gs[1].Lease.ID
	if !s.Renew(renewed, t0.Add(20*time.Second)) {
		t.Fatal("Renew = false")
	}
	if s.Renew(424242, t0) {
		t.Fatal("Renew(unknown) = true")
	}
	steps := []struct {
		at   time.Duration
		want []lease.ID
	}{
		{29 * time.Second, nil},
		{30 * time.Second, []lease.ID{idle}},
		{49 * time.Second, nil},
		{50 * time.Second, []lease.ID{renewed}},
		{90 * time.Second, nil},
	}
	for _, st := range steps {
		t.Run(st.at.String(), func(t *testing.T) {
			exp, _ := s.Tick(t0.Add(st.at))
			var got []lease.ID
			for _, l := range exp {
				got = append(got, l.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Fatalf("expired %v, want %v", got, st.want)
			}
			checkInvariants(t, s, st.at.String())
		})
	}
	if n, _ := s.UserRunning("u"); n != 0 {
		t.Fatalf("UserRunning %d after all expired", n)
	}
	if s.Renew(renewed, t0.Add(time.Hour)) {
		t.Fatal("Renew of an expired lease = true")
	}
}

func TestQueueDeadline(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 1, fpA)
	// The slot is taken, so both requests wait.
	s.Enqueue(Request{ID: 1, User: "a", Fingerprint: fpA}, t0)
	s.Dispatch(t0)
	s.Enqueue(Request{ID: 2, User: "b", Fingerprint: fpA, File: "x.c", Holder: 3, Deadline: t0.Add(10 * time.Second)}, t0)
	s.Enqueue(Request{ID: 3, User: "c", Fingerprint: fpA}, t0) // no deadline
	if _, to := s.Tick(t0.Add(9 * time.Second)); len(to) != 0 {
		t.Fatalf("timed out early: %+v", to)
	}
	_, to := s.Tick(t0.Add(10 * time.Second))
	if len(to) != 1 || to[0].ID != 2 || to[0].User != "b" || to[0].File != "x.c" || to[0].Holder != 3 {
		t.Fatalf("timed out %+v, want request 2", to)
	}
	if _, ok := s.Queue().Get(2); ok {
		t.Fatal("timed-out request still queued")
	}
	if _, to := s.Tick(t0.Add(time.Hour)); len(to) != 0 {
		t.Fatalf("timed out again / no-deadline request timed out: %+v", to)
	}
	if s.Queue().Len() != 1 {
		t.Fatalf("queue %d, want 1", s.Queue().Len())
	}
}

func TestCancel(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 1, fpA)
	s.Enqueue(Request{ID: 1, User: "u", Fingerprint: fpA}, t0)
	s.Enqueue(Request{ID: 2, User: "u", Fingerprint: fpA}, t0)
	tests := []struct {
		id   uint64
		want bool
	}{{1, true}, {1, false}, {99, false}}
	for _, tt := range tests {
		if got := s.Cancel(tt.id); got != tt.want {
			t.Errorf("Cancel(%d) = %v, want %v", tt.id, got, tt.want)
		}
	}
	gs := s.Dispatch(t0)
	if len(gs) != 1 || gs[0].Request != 2 {
		t.Fatalf("granted %+v, want only 2", gs)
	}
	if p, est := s.EstimateWait(1, t0); p != 0 || est != 0 {
		t.Errorf("EstimateWait(cancelled) = %d, %v", p, est)
	}
}

func TestHealth(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ProbationAfter, cfg.BlockAfter, cfg.RecoverAfter, cfg.BlockFor = 2, 5, 5, 2*time.Minute
	s := New(cfg, 1)
	addHost(t, s, "h", 3, 4, fpA)
	now := t0
	type step struct {
		name      string
		do        func()
		wantState tiering.State
		wantTier  int
	}
	fail := func() { now = now.Add(time.Second); s.ReportOutcome("h", true, now) }
	ok := func() { now = now.Add(time.Second); s.ReportOutcome("h", false, now) }
	tick := func(d time.Duration) func() {
		return func() { now = now.Add(d); s.Tick(now) }
	}
	var blockedAt time.Time
	steps := []step{
		{"fail 1", fail, tiering.Healthy, 3},
		{"fail 2: probation", fail, tiering.Probation, 2},
		{"fail 3", fail, tiering.Probation, 2},
		{"fail 4", fail, tiering.Probation, 2},
		{"fail 5: blocked", func() { fail(); blockedAt = now }, tiering.Blocked, 0},
		{"tick before BlockFor", func() { now = blockedAt.Add(cfg.BlockFor - time.Second); s.Tick(now) }, tiering.Blocked, 0},
		{"tick at BlockFor: probation", func() { now = blockedAt.Add(cfg.BlockFor); s.Tick(now) }, tiering.Probation, 2},
		{"ok 1", ok, tiering.Probation, 2},
		{"ok 2", ok, tiering.Probation, 2},
		{"ok 3", ok, tiering.Probation, 2},
		{"ok 4", ok, tiering.Probation, 2},
		{"ok 5: healthy", ok, tiering.Healthy, 3},
		{"tick", tick(time.Hour), tiering.Healthy, 3},
	}
	for _, st := range steps {
		st.do()
		h, _ := s.Host("h")
		v, _ := s.Verdict("h")
		if h.State != st.wantState || v.Tier != st.wantTier {
			t.Fatalf("%s: state %s tier %d, want %s %d", st.name, h.State, v.Tier, st.wantState, st.wantTier)
		}
		if st.wantState == tiering.Blocked && h.Note == "" {
			t.Errorf("%s: blocked without a note", st.name)
		}
	}
	h, _ := s.Host("h")
	if h.Failures != 5 || h.JobsDone != 5 {
		t.Errorf("Failures %d JobsDone %d, want 5 5", h.Failures, h.JobsDone)
	}
	// A blocked host takes nothing.
	for range 5 {
		fail()
	}
	s.Enqueue(Request{ID: 1, User: "u", Fingerprint: fpA}, now)
	if gs := s.Dispatch(now); len(gs) != 0 {
		t.Fatalf("blocked host granted %+v", gs)
	}
	// The block lifting lets the waiting request through.
	now = now.Add(cfg.BlockFor)
	s.Tick(now)
	if gs := s.Dispatch(now); len(gs) != 1 {
		t.Fatalf("after block lifted granted %d", len(gs))
	}
}

func TestCompileErrorsNeverDegrade(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 3, 4, fpA)
	for i := range 100 {
		s.ReportOutcome("h", false, t0.Add(time.Duration(i)*time.Second))
		if st := state(t, s, "h"); st != tiering.Healthy {
			t.Fatalf("after %d compile errors: %s", i+1, st)
		}
	}
	// Interleaved with farm failures below the threshold, they do not
	// push the host towards probation either.
	s.ReportOutcome("h", true, t0.Add(time.Hour))
	s.ReportOutcome("h", false, t0.Add(time.Hour))
	if st := state(t, s, "h"); st != tiering.Healthy {
		t.Fatalf("one farm failure then a compile error: %s", st)
	}
	h, _ := s.Host("h")
	if h.State != tiering.Healthy || tier(t, s, "h") != 3 {
		t.Fatalf("state %s tier %d", h.State, tier(t, s, "h"))
	}
	if h.JobsDone != 101 || h.Failures != 1 {
		t.Fatalf("JobsDone %d Failures %d", h.JobsDone, h.Failures)
	}
	s.ReportOutcome("unknown", true, t0) // no panic, no host created
	if _, ok := s.Host("unknown"); ok {
		t.Fatal("ReportOutcome created a host")
	}
}

func TestJobsDoneCountsCompletedOnly(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 4, fpA)
	for i := uint64(1); i <= 4; i++ {
		s.Enqueue(Request{ID: i, User: "u", Fingerprint: fpA, Holder: 1}, t0)
	}
	gs := s.Dispatch(t0)
	// Releases, expiries and revocations are not completed jobs.
	s.Release(gs[0].Lease.ID, t0.Add(time.Second))
	s.Tick(t0.Add(time.Hour))
	s.ReportOutcome("h", true, t0.Add(time.Hour))
	if h, _ := s.Host("h"); h.JobsDone != 0 || h.Failures != 1 {
		t.Fatalf("JobsDone %d Failures %d, want 0 1", h.JobsDone, h.Failures)
	}
	s.ReportOutcome("h", false, t0.Add(time.Hour))
	s.ReportOutcome("h", false, t0.Add(time.Hour))
	if h, _ := s.Host("h"); h.JobsDone != 2 {
		t.Fatalf("JobsDone %d, want 2", h.JobsDone)
	}
}

func TestAdminDrainBlockNotes(t *testing.T) {
	yes, no := true, false
	s := newSched()
	addHost(t, s, "h", 2, 2, fpA)
	type step struct {
		name      string
		do        func()
		wantState tiering.State
		wantNote  string
	}
	steps := []step{
		{"drain", func() { s.SetAdmin("h", &yes, nil, "kernel upgrade", t0) }, tiering.Draining, "kernel upgrade"},
		{"volunteer load keeps admin note", func() { s.UpdateLoad("h", Load{Load1: 0.1, Available: true}, t0) }, tiering.Draining, "kernel upgrade"},
		{"volunteer unavailable adds its reason", func() { s.UpdateLoad("h", Load{Available: false, Reason: "owner active"}, t0) }, tiering.Draining, "kernel upgrade; owner active"},
		{"volunteer available again", func() { s.UpdateLoad("h", Load{Available: true}, t0) }, tiering.Draining, "kernel upgrade"},
		{"undrain", func() { s.SetAdmin("h", &no, nil, "", t0) }, tiering.Healthy, ""},
		{"block", func() { s.SetAdmin("h", nil, &yes, "bad RAM", t0) }, tiering.Blocked, "bad RAM"},
		{"load while blocked", func() { s.UpdateLoad("h", Load{Available: true}, t0) }, tiering.Blocked, "bad RAM"},
		{"drain while blocked", func() { s.SetAdmin("h", &yes, nil, "later", t0) }, tiering.Blocked, "bad RAM"},
		{"unblock, still drained", func() { s.SetAdmin("h", nil, &no, "", t0) }, tiering.Draining, "later"},
		{"undrain again", func() { s.SetAdmin("h", &no, nil, "", t0) }, tiering.Healthy, ""},
		{"only the volunteer", func() { s.UpdateLoad("h", Load{Available: false, Reason: "paused"}, t0) }, tiering.Draining, "paused"},
	}
	for _, st := range steps {
		st.do()
		h, _ := s.Host("h")
		if h.State != st.wantState || h.Note != st.wantNote {
			t.Fatalf("%s: state %s note %q, want %s %q", st.name, h.State, h.Note, st.wantState, st.wantNote)
		}
		if st.wantState != tiering.Healthy && tier(t, s, "h") != 0 {
			t.Fatalf("%s: tier %d, want 0", st.name, tier(t, s, "h"))
		}
	}
	if s.SetAdmin("nobody", &yes, nil, "x", t0) {
		t.Error("SetAdmin(unknown) = true")
	}
}

// An admin unblock also ends a block the host earned by failing.
func TestAdminUnblockLiftsHealthBlock(t *testing.T) {
	no := false
	s := newSched()
	addHost(t, s, "h", 2, 2, fpA)
	for range s.Config().BlockAfter {
		s.ReportOutcome("h", true, t0)
	}
	if state(t, s, "h") != tiering.Blocked {
		t.Fatalf("state %s, want blocked", state(t, s, "h"))
	}
	s.SetAdmin("h", nil, &no, "", t0)
	if st := state(t, s, "h"); st == tiering.Blocked {
		t.Fatalf("still blocked after admin unblock")
	}
}

func TestDrainKeepsRunningLeases(t *testing.T) {
	yes := true
	s := newSched()
	addHost(t, s, "h", 1, 2, fpA)
	s.Enqueue(Request{ID: 1, User: "u", Fingerprint: fpA}, t0)
	s.Dispatch(t0)
	s.SetAdmin("h", &yes, nil, "drain", t0)
	if s.Leases().Len() != 1 {
		t.Fatal("drain revoked a lease")
	}
	s.Enqueue(Request{ID: 2, User: "u", Fingerprint: fpA}, t0)
	if gs := s.Dispatch(t0); len(gs) != 0 {
		t.Fatal("draining host granted")
	}
	checkInvariants(t, s, "drain")
}

func TestOffered(t *testing.T) {
	yes := true
	s := newSched()
	addHost(t, s, "usable", 1, 2, fpA)
	addHost(t, s, "drained", 1, 2, fpA)
	s.SetAdmin("drained", &yes, nil, "x", t0)
	addHost(t, s, "gone", 1, 2, fpA)
	s.Disconnect("gone", t0)
	addHost(t, s, "other", 1, 2, fpB)
	// Connected but not in the farm file.
	s.Connect("stranger", Registration{Slots: 2, Compilers: map[string]string{fpA: "x86_64-linux-gnu"}}, t0)
	s.UpdateLoad("stranger", Load{Available: true}, t0)
	// In the farm, offers fpA, but restricted to another target.
	s.SetFarmHost("arm-only", 2, 1, 0, []string{"aarch64-linux-gnu"}, t0)
	s.Connect("arm-only", Registration{Slots: 2, Compilers: map[string]string{fpA: "x86_64-linux-gnu"}}, t0)
	s.UpdateLoad("arm-only", Load{Available: true}, t0)
	// Restricted to the matching target.
	s.SetFarmHost("x86-only", 2, 1, 0, []string{"x86_64-linux-gnu"}, t0)
	s.Connect("x86-only", Registration{Slots: 2, Compilers: map[string]string{fpA: "x86_64-linux-gnu"}}, t0)
	s.UpdateLoad("x86-only", Load{Available: true}, t0)

	tests := []struct {
		fp                   string
		wantOffered, wantUse int
	}{
		{fpA, 3, 2}, // usable, drained (offered, not usable), x86-only
		{fpB, 1, 1},
		{"none", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.fp, func(t *testing.T) {
			off, use := s.Offered(tt.fp, "")
			if off != tt.wantOffered || use != tt.wantUse {
				t.Fatalf("Offered = %d, %d; want %d, %d", off, use, tt.wantOffered, tt.wantUse)
			}
			if s.Compatible(tt.fp) != (tt.wantUse > 0) {
				t.Fatalf("Compatible = %v", s.Compatible(tt.fp))
			}
		})
	}
	// Requests for fpA never land on arm-only or stranger.
	for i := uint64(1); i <= 10; i++ {
		s.Enqueue(Request{ID: i, User: "u", Fingerprint: fpA}, t0)
	}
	for _, g := range s.Dispatch(t0) {
		if g.Lease.Host != "usable" && g.Lease.Host != "x86-only" {
			t.Errorf("granted on %s", g.Lease.Host)
		}
	}
}

func TestEstimateWait(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 2, fpA)
	// One lease that ran 4 s gives the scheduler a mean lease duration.
	s.Enqueue(Request{ID: 50, User: "warm", Fingerprint: fpA}, t0)
	warm := s.Dispatch(t0)
	if len(warm) != 1 {
		t.Fatal("no grant")
	}
	s.Release(warm[0].Lease.ID, t0.Add(4*time.Second))
	if s.MeanLease() <= 0 {
		t.Fatalf("MeanLease %v after a 4 s lease", s.MeanLease())
	}
	for i := uint64(1); i <= 2; i++ {
		s.Enqueue(Request{ID: i, User: "busy", Fingerprint: fpA}, t0)
	}
	s.Dispatch(t0)
	const n = 10
	for i := uint64(0); i < n; i++ {
		s.Enqueue(Request{ID: 100 + i, User: "waiter", Fingerprint: fpA}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	s.Enqueue(Request{ID: 999, User: "waiter", Fingerprint: "nobody"}, t0)
	t.Run("position grows", func(t *testing.T) {
		prevPos, prevEst := 0, time.Duration(0)
		for i := uint64(0); i < n; i++ {
			pos, est := s.EstimateWait(100+i, t0)
			if pos != int(i)+1 {
				t.Errorf("request %d: position %d, want %d", i, pos, i+1)
			}
			if pos <= prevPos || est <= prevEst {
				t.Errorf("request %d: position %d est %v not above %d %v", i, pos, est, prevPos, prevEst)
			}
			if est <= 0 || est > time.Hour {
				t.Errorf("request %d: est %v", i, est)
			}
			prevPos, prevEst = pos, est
		}
	})
	t.Run("no slots", func(t *testing.T) {
		_, est := s.EstimateWait(999, t0)
		if est < time.Hour {
			t.Errorf("est %v for a compiler nobody offers, want >= 1h", est)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if p, est := s.EstimateWait(12345, t0); p != 0 || est != 0 {
			t.Errorf("EstimateWait(unknown) = %d %v", p, est)
		}
	})
	t.Run("more slots shorter", func(t *testing.T) {
		_, before := s.EstimateWait(100+n-1, t0)
		addHost(t, s, "h2", 1, 0, fpA) // zero slots: no change
		addHost(t, s, "h3", 1, 8, fpA)
		// h3's slots are free, so Dispatch would place; estimate first.
		_, after := s.EstimateWait(100+n-1, t0)
		if after >= before {
			t.Errorf("est %v with 10 slots, %v with 2", after, before)
		}
	})
}

func TestMeanLeaseTracksReleases(t *testing.T) {
	s := newSched()
	addHost(t, s, "h", 1, 1, fpA)
	now := t0
	for i := uint64(1); i <= 50; i++ {
		s.Enqueue(Request{ID: i, User: "u", Fingerprint: fpA}, now)
		gs := s.Dispatch(now)
		if len(gs) != 1 {
			t.Fatal("no grant")
		}
		now = now.Add(2 * time.Second)
		s.Release(gs[0].Lease.ID, now)
	}
	if m := s.MeanLease(); m < 1900*time.Millisecond || m > 2100*time.Millisecond {
		t.Fatalf("MeanLease %v, want ~2s", m)
	}
}

// A long random sequence of operations keeps the invariants.
func TestRandomOperationsKeepInvariants(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			randomOps(t, seed, 4000)
		})
	}
}

func randomOps(t *testing.T, seed int64, steps int) {
	rng := rand.New(rand.NewSource(seed))
	cfg := DefaultConfig()
	cfg.Seed = uint64(seed)
	s := New(cfg, 1)
	fps := []string{fpA, fpB}
	hosts := []string{"h0", "h1", "h2", "h3", "h4"}
	users := []string{"ann", "bob", "cat", "dan"}
	slots := map[string]int{}
	connect := func(name string, now time.Time) {
		comps := map[string]string{}
		for _, fp := range fps {
			if rng.Intn(3) > 0 {
				comps[fp] = "x86_64-linux-gnu"
			}
		}
		s.Connect(name, Registration{CPUs: 4, Slots: slots[name], Compilers: comps}, now)
		s.UpdateLoad(name, Load{Available: true, Load1: rng.Float64() * 4}, now)
	}
	now := t0
	for i, h := range hosts {
		slots[h] = 1 + i
		s.SetFarmHost(h, 4, float64(1+rng.Intn(4))+rng.Float64(), 0, nil, now)
		connect(h, now)
	}
	nextID := uint64(0)
	reqFP := map[uint64]string{}
	var ops [16]int
	for step := 0; step < steps; step++ {
		now = now.Add(time.Duration(rng.Intn(3000)) * time.Millisecond)
		op := rng.Intn(16)
		ops[op]++
		h := hosts[rng.Intn(len(hosts))]
		switch op {
		case 0, 1, 2:
			nextID++
			r := Request{ID: nextID, User: users[rng.Intn(len(users))], Fingerprint: fps[rng.Intn(len(fps))], Holder: uint64(1 + rng.Intn(6))}
			if rng.Intn(4) == 0 {
				r.Deadline = now.Add(time.Duration(rng.Intn(60)) * time.Second)
			}
			reqFP[r.ID] = r.Fingerprint
			s.Enqueue(r, now)
		case 3, 4:
			before := map[string]int{}
			for _, n := range hosts {
				hi, _ := s.Host(n)
				before[n] = hi.Busy
			}
			for _, g := range s.Dispatch(now) {
				hi, _ := s.Host(g.Lease.Host)
				if hi.Busy > hi.Slots || tier(t, s, g.Lease.Host) < 0 {
					t.Fatalf("step %d: granted on %s busy %d/%d", step, g.Lease.Host, hi.Busy, hi.Slots)
				}
				if _, ok := hi.Compilers[reqFP[g.Request]]; !ok {
					t.Fatalf("step %d: request %d for %q granted on %s, which offers %v", step, g.Request, reqFP[g.Request], g.Lease.Host, hi.Compilers)
				}
				if before[g.Lease.Host] >= hi.Slots {
					t.Fatalf("step %d: granted on %s, full before Dispatch", step, g.Lease.Host)
				}
			}
		case 5, 6:
			var ids []lease.ID
			s.Leases().Each(func(l *lease.Lease) { ids = append(ids, l.ID) })
			if len(ids) > 0 {
				sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
				id := ids[rng.Intn(len(ids))]
				if _, ok := s.Release(id, now); !ok {
					t.Fatalf("step %d: release of live lease %d failed", step, id)
				}
				if _, ok := s.Release(id, now); ok {
					t.Fatalf("step %d: double release of %d succeeded", step, id)
				}
			}
		case 7:
			s.Leases().Each(func(l *lease.Lease) {
				if rng.Intn(2) == 0 {
					s.Renew(l.ID, now)
				}
			})
		case 8:
			s.Tick(now)
		case 9:
			s.Disconnect(h, now)
			if rng.Intn(2) == 0 {
				connect(h, now)
			}
		case 10:
			hi, _ := s.Host(h)
			if !hi.Connected {
				connect(h, now)
			} else {
				s.UpdateLoad(h, Load{Available: rng.Intn(5) > 0, Load1: rng.Float64() * 12, Reason: "r"}, now)
			}
		case 11:
			s.ReportOutcome(h, rng.Intn(3) == 0, now)
		case 12:
			b := rng.Intn(2) == 0
			if rng.Intn(2) == 0 {
				s.SetAdmin(h, &b, nil, "drain", now)
			} else {
				s.SetAdmin(h, nil, &b, "block", now)
			}
		case 13:
			if nextID > 0 {
				s.Cancel(1 + uint64(rng.Int63n(int64(nextID))))
			}
		case 14:
			if rng.Intn(3) == 0 {
				s.RemoveFarmHost(h, now)
			} else {
				s.SetFarmHost(h, 4, float64(1+rng.Intn(4)), 0, nil, now)
			}
		case 15:
			if rng.Intn(2) == 0 {
				s.ReleaseHolder(uint64(1+rng.Intn(6)), now)
			} else if hi, _ := s.Host(h); hi.Busy < hi.Slots {
				// A volunteer reports a job the scheduler did not know.
				nextID++
				s.Adopt(lease.Lease{ID: lease.ID(1_000_000 + nextID), User: users[rng.Intn(len(users))], Host: h, Granted: now, Expires: now.Add(time.Second)}, now)
			}
		}
		checkInvariants(t, s, fmt.Sprintf("step %d op %d", step, op))
	}
	// Drain everything: all counts return to zero.
	now = now.Add(time.Hour)
	s.Tick(now)
	checkInvariants(t, s, "final")
	if s.Leases().Len() != 0 || len(s.RunningUsers()) != 0 {
		t.Fatalf("after expiry: %d leases, users %v", s.Leases().Len(), s.RunningUsers())
	}
	for op, n := range ops {
		if n == 0 {
			t.Errorf("op %d never ran", op)
		}
	}
}

// Config documents "ProbationAfter consecutive farm failures" and
// docs/architecture.md "on probation after 2 in a row, blocked for 2
// minutes after 5": failures separated by successes are not in a row.
func TestHealthCountsFailuresInARow(t *testing.T) {
	tests := []struct {
		name    string
		pattern string // F: farm failure, S: success
		want    tiering.State
	}{
		{"F F in a row", "FF", tiering.Probation},
		{"F S F", "FSF", tiering.Healthy},
		{"one in five fails", "FSSSSFSSSSFSSSSFSSSSF", tiering.Healthy},
		{"five in a row", "SSSSSFFFFF", tiering.Blocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched()
			addHost(t, s, "h", 2, 2, fpA)
			for i, c := range tt.pattern {
				s.ReportOutcome("h", c == 'F', t0.Add(time.Duration(i)*time.Second))
			}
			got := state(t, s, "h")
			if got == tt.want {
				return
			}
			if tt.want == tiering.Healthy {
				t.Fatalf("after %q the host is %s: scheduler.ReportOutcome resets failStreak only after RecoverAfter successes in a row, so failures separated by successes accumulate towards probation and a block (documented: %d / %d in a row)", tt.pattern, got, s.Config().ProbationAfter, s.Config().BlockAfter)
			}
			t.Fatalf("after %q: %s, want %s", tt.pattern, got, tt.want)
		})
	}
}

// docs/operations.md: "slots=N caps the jobs at once (default: what the
// volunteer offers, at most NCPUS)".
func TestDefaultSlotsAtMostNCPUS(t *testing.T) {
	s := newSched()
	s.SetFarmHost("h", 4, 1, 0, nil, t0) // NCPUS 4, no slots=
	s.Connect("h", Registration{CPUs: 16, Slots: 16, Compilers: map[string]string{fpA: "t"}}, t0)
	s.UpdateLoad("h", Load{Available: true}, t0)
	h, _ := s.Host("h")
	if h.Slots == 16 {
		t.Fatal("scheduler.Connect caps a volunteer's slots only by the farm file's slots=, not by NCPUS as docs/operations.md says (farm NCPUS 4, volunteer offers 16: Slots 16, want 4)")
	}
	if h.Slots != 4 {
		t.Fatalf("Slots %d, want 4", h.Slots)
	}
}

package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/dcc-farm/dcc/pkg/lease"
)

// BenchmarkGrantRelease measures the broker's hot path in steady state: a
// farm of 500 hosts (4 slots each) is full, 1000 requests from 50 users
// wait, and each iteration releases one lease and dispatches, which grants
// the freed slot to the next waiting request; a new request is enqueued
// to keep 1000 waiting.
func BenchmarkGrantRelease(b *testing.B) {
	const hosts, slots, users, waiting = 500, 4, 50, 1000
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(DefaultConfig(), 1)
	comps := map[string]string{"fp": "x86_64-linux-gnu"}
	for i := range hosts {
		name := fmt.Sprintf("h%03d", i)
		s.SetFarmHost(name, slots, float64(1+i%4), slots, nil, now)
		s.Connect(name, Registration{CPUs: slots, Slots: slots, Compilers: comps}, now)
		s.UpdateLoad(name, Load{Available: true}, now)
	}
	userNames := make([]string, users)
	for i := range userNames {
		userNames[i] = fmt.Sprintf("user%02d", i)
	}
	id := uint64(0)
	enqueue := func() {
		id++
		s.Enqueue(Request{ID: id, User: userNames[id%users], Fingerprint: "fp", Holder: id%users + 1}, now)
	}
	var leases []lease.ID
	for range hosts*slots + waiting {
		enqueue()
	}
	for _, g := range s.Dispatch(now) {
		leases = append(leases, g.Lease.ID)
	}
	if len(leases) != hosts*slots || s.Queue().Len() != waiting {
		b.Fatalf("setup: %d leases, %d waiting", len(leases), s.Queue().Len())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Millisecond)
		k := i % len(leases)
		if _, ok := s.Release(leases[k], now); !ok {
			b.Fatal("release failed")
		}
		gs := s.Dispatch(now)
		if len(gs) != 1 {
			b.Fatalf("dispatch granted %d", len(gs))
		}
		leases[k] = gs[0].Lease.ID
		enqueue()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "grants/s")
}

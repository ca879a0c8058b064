package scheduler

import (
	"time"

	"github.com/dcc-farm/dcc/pkg/lease"
	"github.com/dcc-farm/dcc/pkg/tiering"
)

// This file holds the "compile locally instead" decisions. They are pure
// functions of plain values so that the three places that need them — the
// broker answering a lease request, the agent when one of its local slots
// frees, and the simulator modelling both — decide alike. The scheduler
// supplies the farm's side of the inputs (Scheduler.LocalQuery); the
// client supplies its own (a free slot, the farm's gain over its machine).
//
// The reasoning (docs/scheduling.md, "Compiling locally"): a user's own
// machine is capacity no one else can use. Sending a job home costs that
// job time only when the farm would have run it sooner; it costs the farm
// nothing and frees a farm slot for someone else. Three cases make a free
// local slot the better place:
//
//  1. the job itself finishes sooner at home: its wait for a farm slot is
//     longer than the farm's gain (local compile − remote compile);
//  2. the user is throughput-bound: it wants more than its fair share of
//     the farm and has other requests waiting. Its farm share stays full
//     with those, so the local compile is extra throughput for its build,
//     whatever this one job's own wait;
//  3. the farm slot offered is no faster than the local one (DeclineGrant):
//     the job runs as fast at home and the farm slot goes to someone whose
//     own machine is busy.

// LocalQuery is everything the decision for one waiting request depends on.
type LocalQuery struct {
	// From the client (the agent's request):

	// SlotFree: the client has a free local slot now.
	SlotFree bool
	// Gain is how much sooner the farm finishes this job than the local
	// machine, once it has a slot: local compile time − (remote compile
	// time + transfer overhead), floored at 0 (wire: LocalEstimateMs).
	Gain time.Duration

	// From the broker (Scheduler.LocalQuery):

	// Wait is the estimated wait for a farm slot (Scheduler.EstimateWait).
	// It is 0 until the broker has seen a lease end, so that nothing is
	// sent home on a guess.
	Wait time.Duration
	// Backlogged: the user wants more slots (leases + waiting requests)
	// than its max-min fair share of the usable ones, so the farm, not
	// its own -j, limits it, and its requests are served at the pace of
	// its own leases ending.
	Backlogged bool
	// OthersWaiting is how many of the user's other requests wait at the
	// broker besides this one.
	OthersWaiting int
}

// CompileLocally reports whether the request q describes should leave the
// broker's queue and compile on the client's free local slot: when the job
// finishes sooner at home (Wait > Gain), or when its user is throughput-
// bound (Backlogged with OthersWaiting > 0, and a real wait ahead), so the
// local slot adds to what the farm gives it. Without a free slot it is
// always false.
func CompileLocally(q LocalQuery) bool {
	if !q.SlotFree || q.Wait <= 0 {
		return false
	}
	if q.Wait > q.Gain {
		return true
	}
	// Throughput-bound: the local compile is extra capacity, unless the
	// machine is so much slower than the farm that the job would outlast
	// the user's whole queue there many times over (about Wait per waiting
	// request, times backlogSlack): then it would become the build's tail.
	return q.Backlogged && q.OthersWaiting > 0 && q.Gain < backlogSlack*q.Wait*time.Duration(q.OthersWaiting+1)
}

// backlogSlack is how many times its farm queue a throughput-bound job
// may take at home. The simulator's scenarios (desktops at a third to a
// quarter of the servers' power) are far inside it; a client whose power
// is near zero is not.
const backlogSlack = 10

// DeclineGrant reports whether a client holding a free local slot of
// speed localPower should give back a grant on a host where its job would
// run at speed hostSpeed (Grant.Speed; power units, 1 = reference) and
// compile at home: when the host is no faster, the job loses nothing and
// the farm slot goes to a user whose own machine is busy. A declined grant
// is returned with Scheduler.Decline.
func DeclineGrant(hostSpeed, localPower float64, slotFree bool) bool {
	return slotFree && localPower > 0 && hostSpeed <= localPower
}

// LocalQuery returns the broker's side of the local decision for waiting
// request id (Wait, Backlogged, OthersWaiting); the caller fills SlotFree
// and Gain from the client. For a request that is not waiting it returns
// the zero LocalQuery, which never sends a job home.
func (s *Scheduler) LocalQuery(id uint64, now time.Time) LocalQuery {
	r, ok := s.reqs[id]
	if !ok {
		return LocalQuery{}
	}
	_, wait := s.EstimateWait(id, now) // also rebuilds backlogged
	return LocalQuery{
		Wait:          wait,
		Backlogged:    s.backlogged[r.User],
		OthersWaiting: s.queue.Waiting(r.User) - 1,
	}
}

// Decline ends a lease whose client gave it back unused (DeclineGrant):
// the slot is free again, the user is not charged, and neither the mean
// lease time nor the host's health hears of it, since no job ran. The
// caller dispatches afterwards.
func (s *Scheduler) Decline(id lease.ID, now time.Time) (lease.Lease, bool) {
	l, ok := s.leases.Release(id)
	if !ok {
		return l, false
	}
	l.Granted = now // nothing to charge
	s.settle(l, now)
	return l, true
}

// usableSlots counts the slots of usable hosts (tier > 0) offering fp.
func (s *Scheduler) usableSlots(fp string) int {
	slots := 0
	for i := range s.info {
		if s.verdict[i].Tier > 0 && s.offers(i, fp) {
			slots += s.hosts[i].Slots
		}
	}
	return slots
}

// activeUsers counts the users holding leases or waiting for one.
func (s *Scheduler) activeUsers() int {
	active := len(s.count)
	s.queue.EachUser(func(u string, _ int) {
		if _, running := s.count[u]; !running {
			active++
		}
	})
	return active
}

// speedOf is the expected speed of the next job on host i.
func (s *Scheduler) speedOf(i int) float64 { return tiering.Speed(&s.hosts[i]) }

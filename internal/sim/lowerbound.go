package sim

import (
	"math"
	"sort"
)

// LowerBound returns a makespan no schedule can beat (measured from the
// first build's start), the largest of:
//
//  1. Arrival-constrained capacity: for every build start time s, the work
//     W_s of the builds starting at or after s must fit between s and T in
//     the farm's capacity plus the users' own machines:
//     ∫_s^T C(t) dt + Σ_u min(W_{s,u}, L_u·(T − s_u)) ≥ W_s, where
//     C(t) = Σ over hosts present at t of power × slots × min(1,
//     cpus/(slots + background(t))) (the most our jobs can get from a host
//     under processor sharing), L_u is user u's local slots × local power,
//     W_{s,u} u's part of W_s and s_u ≥ s its first start: a user's machine
//     only ever compiles that user's jobs.
//  2. Per build: a build with -jP never runs more than P jobs at once, so
//     it finishes no earlier than the T with ∫_start^T R_P(t) dt = its
//     work, where R_P(t) is the most P jobs can get at time t: the P
//     largest marginal rates over the hosts present (the k-th job on a
//     host adds k·r(k) − (k−1)·r(k−1), r(k) = power × min(1,
//     cpus/(k + background)), k ≤ slots) and the user's local slots.
//  3. Per build: start + its longest job / the fastest power.
//
// It is a bound, not an estimate: it ignores the tail of a build (the last
// jobs cannot be split), so real schedules stay some percent above it.
func LowerBound(sc *Scenario) float64 {
	work := sc.durations()
	first := math.Inf(1)
	type bs struct {
		user  int
		start float64
		work  float64
	}
	var builds []bs
	pmax := 0.0
	for _, h := range sc.Hosts {
		pmax = math.Max(pmax, h.Power)
	}
	best := 0.0
	for ui, u := range sc.Users {
		pmaxU := math.Max(pmax, u.localPower())
		if u.localSlots() == 0 {
			pmaxU = pmax
		}
		for bi, b := range u.Builds {
			var w, longest float64
			for _, x := range work[ui][bi] {
				w += x
				longest = math.Max(longest, x)
			}
			builds = append(builds, bs{ui, b.StartS, w})
			first = math.Min(first, b.StartS)
			best = math.Max(best, buildBound(sc, &u, b, w))
			best = math.Max(best, b.StartS+longest/pmaxU)
		}
	}
	if len(builds) == 0 {
		return 0
	}
	starts := make([]float64, 0, len(builds))
	for _, b := range builds {
		starts = append(starts, b.start)
	}
	sort.Float64s(starts)
	cf := newCapFunc(sc)
	for k, s := range starts {
		if k > 0 && s == starts[k-1] {
			continue
		}
		var wTot float64
		wu := make([]float64, len(sc.Users))
		su := make([]float64, len(sc.Users))
		for i := range su {
			su[i] = math.Inf(1)
		}
		for _, b := range builds {
			if b.start >= s {
				wTot += b.work
				wu[b.user] += b.work
				su[b.user] = math.Min(su[b.user], b.start)
			}
		}
		done := func(T float64) float64 {
			v := cf.integral(s, T)
			for i, u := range sc.Users {
				if wu[i] > 0 && T > su[i] {
					v += math.Min(wu[i], float64(u.localSlots())*u.localPower()*(T-su[i]))
				}
			}
			return v
		}
		lo, hi := s, s+1
		for done(hi) < wTot {
			lo = hi
			hi = s + 2*(hi-s)
			if hi-s > 1e9 {
				break
			}
		}
		for i := 0; i < 60 && hi-lo > 1e-6; i++ {
			mid := (lo + hi) / 2
			if done(mid) >= wTot {
				hi = mid
			} else {
				lo = mid
			}
		}
		best = math.Max(best, hi)
	}
	return best - first
}

// buildBound is bound 2 for one build of u with work w.
func buildBound(sc *Scenario, u *User, b Build, w float64) float64 {
	cf := newCapFunc(sc)
	t, done := b.StartS, 0.0
	for _, x := range cf.breaks {
		if x <= t {
			continue
		}
		r := topRate(sc, u, b.Parallel, t)
		if done+r*(x-t) >= w {
			return t + (w-done)/r
		}
		done += r * (x - t)
		t = x
	}
	return t + (w-done)/topRate(sc, u, b.Parallel, t)
}

// topRate is the most work per second p jobs of user u can get at time t.
func topRate(sc *Scenario, u *User, p int, t float64) float64 {
	var rates []float64
	for _, h := range sc.Hosts {
		if isAway(h, t) {
			continue
		}
		bg := bgAt(h, t)
		prev := 0.0
		for k := 1; k <= h.Slots; k++ {
			tot := float64(k) * h.Power * math.Min(1, float64(h.CPUs)/(float64(k)+bg))
			rates = append(rates, tot-prev)
			prev = tot
		}
	}
	for k := 0; k < u.localSlots(); k++ {
		rates = append(rates, u.localPower())
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(rates)))
	var r float64
	for i := 0; i < p && i < len(rates); i++ {
		r += rates[i]
	}
	return r
}

func isAway(h Host, t float64) bool {
	for _, iv := range h.Away {
		if iv.FromS <= t && t < iv.ToS {
			return true
		}
	}
	return false
}

// capFunc is the farm capacity C(t), piecewise constant between the
// breakpoints of background and absence intervals.
type capFunc struct {
	sc     *Scenario
	breaks []float64
}

func newCapFunc(sc *Scenario) *capFunc {
	c := &capFunc{sc: sc}
	for _, h := range sc.Hosts {
		for _, iv := range append(append([]Interval{}, h.Background...), h.Away...) {
			c.breaks = append(c.breaks, iv.FromS, iv.ToS)
		}
	}
	sort.Float64s(c.breaks)
	return c
}

func (c *capFunc) at(t float64) float64 {
	var v float64
	for _, h := range c.sc.Hosts {
		if isAway(h, t) {
			continue
		}
		bg := bgAt(h, t)
		sl := float64(h.Slots)
		v += sl * h.Power * math.Min(1, float64(h.CPUs)/(sl+bg))
	}
	return v
}

func (c *capFunc) integral(a, b float64) float64 {
	if b <= a {
		return 0
	}
	var v float64
	t := a
	for _, x := range c.breaks {
		if x <= t {
			continue
		}
		if x >= b {
			break
		}
		v += c.at(t) * (x - t)
		t = x
	}
	return v + c.at(t)*(b-t)
}

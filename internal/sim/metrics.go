package sim

import "math"

// Result is what one policy achieved on a scenario. All times are virtual
// seconds. See docs/scheduling.md for the definitions.
type Result struct {
	Policy      string  `json:"policy"`
	MakespanS   float64 `json:"makespan_s"`
	LowerBoundS float64 `json:"lower_bound_s"`
	MeanWaitS   float64 `json:"mean_wait_s"`
	P99WaitS    float64 `json:"p99_wait_s"`
	// Jain is Jain's index of the share received over contended intervals.
	Jain       float64 `json:"jain"`
	LocalJobs  int     `json:"local_jobs"`
	RedoneJobs int     `json:"redone_jobs"`
	// Beyond the required fields: the figures the targets are judged on.
	ContendedS       float64 `json:"contended_s"`
	MedianRunS       float64 `json:"median_run_s"`
	MeanTurnaroundS  float64 `json:"mean_turnaround_s"`
	LightTurnaroundS float64 `json:"light_turnaround_s"`
	WorstTurnaroundS float64 `json:"worst_turnaround_s"`
	LightP99WaitS    float64 `json:"light_p99_wait_s"`

	Users map[string]UserResult `json:"users"`
}

// UserResult is one user's figures.
type UserResult struct {
	TurnaroundS float64 `json:"turnaround_s"` // mean over the user's builds
	P99WaitS    float64 `json:"p99_wait_s"`
	// Share is the user's part of the farm work delivered (power-normalised
	// slot-seconds actually computed) during contended intervals.
	Share float64 `json:"share"`
	// FairX is received / min(demand, fair share), aggregated over the
	// contended intervals in which the user had demand (see integrate).
	FairX float64 `json:"fair_x"`
	Jobs  int     `json:"jobs"`
	Light bool    `json:"light"`
}

// integrate accounts for the interval [lastInt, t), in which the state is
// constant. The farm is contended when the total demand (jobs waiting for
// a slot or running remotely, over all users) exceeds the slots of the
// hosts present. In a contended interval each user u with demand d_u > 0
// has a weighted water-filling fair share fs_u of the slots, and receives
// r_u, the summed speed of its remote jobs (power × CPU share). With
// r̄ = Σr_u / Σmin(d_u, fs_u), the farm speed per fairly-owed slot, the
// interval adds r_u/r̄·dt to u's received and min(d_u, fs_u)·dt to u's
// owed. x_u = received/owed, and Jain = (Σx)² / (n·Σx²) over the users
// with anything owed. Normalising by r̄ per interval makes x independent
// of how fast the farm happens to be at the time.
func (s *Sim) integrate(t float64) {
	from := s.lastInt
	dt := t - from
	s.lastInt = t
	if w := s.sc.ShareWindow; w != nil {
		dt = math.Min(t, w.ToS) - math.Max(from, w.FromS)
	}
	if dt <= 0 {
		return
	}
	demand := 0
	for _, u := range s.users {
		demand += u.waiting + u.remote
	}
	slots := s.presentSlots()
	if demand <= slots {
		return
	}
	fs := s.waterfill(float64(slots))
	var recv, owed float64
	for i, u := range s.users {
		d := float64(u.waiting + u.remote)
		if d > 0 {
			recv += u.remoteRate
			owed += math.Min(d, fs[i])
		}
	}
	if recv <= 0 || owed <= 0 {
		return
	}
	s.contended += dt
	rbar := recv / owed
	for i, u := range s.users {
		d := float64(u.waiting + u.remote)
		if d > 0 {
			u.recvInt += u.remoteRate / rbar * dt
			u.fairInt += math.Min(d, fs[i]) * dt
			u.shareInt += u.remoteRate * dt
		}
	}
}

// waterfill returns each user's weighted max-min fair share of capacity
// slots given demands waiting+remote.
func (s *Sim) waterfill(capacity float64) []float64 {
	if cap(s.wfFS) < len(s.users) {
		s.wfFS = make([]float64, len(s.users))
	}
	fs := s.wfFS[:len(s.users)]
	act := s.wfIdx[:0]
	for i, u := range s.users {
		fs[i] = 0
		if u.waiting+u.remote > 0 {
			act = append(act, i)
		}
	}
	for len(act) > 0 {
		var wsum float64
		for _, i := range act {
			wsum += s.users[i].Weight()
		}
		level := capacity / wsum
		keep := act[:0]
		removed := false
		for _, i := range act {
			d := float64(s.users[i].waiting + s.users[i].remote)
			if d <= level*s.users[i].Weight() {
				fs[i] = d
				capacity -= d
				removed = true
			} else {
				keep = append(keep, i)
			}
		}
		act = keep
		if !removed {
			for _, i := range act {
				fs[i] = level * s.users[i].Weight()
			}
			break
		}
	}
	s.wfIdx = act[:0]
	return fs
}

// Jain returns Jain's fairness index of xs: (Σx)² / (n·Σx²).
func Jain(xs []float64) float64 {
	var s, s2 float64
	for _, x := range xs {
		s += x
		s2 += x * x
	}
	if len(xs) == 0 || s2 == 0 {
		return 1
	}
	return s * s / (float64(len(xs)) * s2)
}

func (s *Sim) result() *Result {
	r := &Result{Policy: s.policy.Name(), MakespanS: s.end, LowerBoundS: s.sc.lowerBound(),
		LocalJobs: s.local, RedoneJobs: s.redone, ContendedS: s.contended, Users: map[string]UserResult{}}
	first := math.Inf(1)
	for _, u := range s.users {
		for _, b := range u.builds {
			first = math.Min(first, b.spec.StartS)
		}
	}
	if !math.IsInf(first, 1) {
		r.MakespanS = s.end - first
	}
	var all []float64
	var xs []float64
	var shareTot float64
	totalJobs := 0
	for _, u := range s.users {
		shareTot += u.shareInt
		for _, b := range u.Spec.Builds {
			totalJobs += b.Jobs
		}
	}
	meanJobs := float64(totalJobs) / float64(len(s.users))
	var sumTurn, sumLight float64
	var nTurn, nLight int
	var lightWaits []float64
	for _, u := range s.users {
		all = append(all, u.waits...)
		ur := UserResult{P99WaitS: percentile(u.waits, 0.99)}
		for _, b := range u.Spec.Builds {
			ur.Jobs += b.Jobs
		}
		ur.Light = len(s.users) > 1 && float64(ur.Jobs) < meanJobs
		var t float64
		for _, b := range u.builds {
			t += b.finish - b.spec.StartS
			sumTurn += b.finish - b.spec.StartS
			nTurn++
			if ur.Light {
				sumLight += b.finish - b.spec.StartS
				nLight++
			}
		}
		if len(u.builds) > 0 {
			ur.TurnaroundS = t / float64(len(u.builds))
		}
		r.WorstTurnaroundS = math.Max(r.WorstTurnaroundS, ur.TurnaroundS)
		if ur.Light {
			lightWaits = append(lightWaits, u.waits...)
		}
		if shareTot > 0 {
			ur.Share = u.shareInt / shareTot
		}
		if u.fairInt > 0 {
			ur.FairX = u.recvInt / u.fairInt
			xs = append(xs, ur.FairX)
		}
		r.Users[u.Spec.Name] = ur
	}
	r.Jain = Jain(xs)
	var ws float64
	for _, w := range all {
		ws += w
	}
	if len(all) > 0 {
		r.MeanWaitS = ws / float64(len(all))
	}
	r.P99WaitS = percentile(all, 0.99)
	r.LightP99WaitS = percentile(lightWaits, 0.99)
	r.MedianRunS = percentile(s.runTimes, 0.5)
	if nTurn > 0 {
		r.MeanTurnaroundS = sumTurn / float64(nTurn)
	}
	if nLight > 0 {
		r.LightTurnaroundS = sumLight / float64(nLight)
	}
	return r
}

// Mean averages results of one policy over several runs (seeds) field by
// field, the users' figures included (a user missing from a run counts
// as absent there). It returns nil for no results.
func Mean(rs []*Result) *Result {
	if len(rs) == 0 {
		return nil
	}
	n := float64(len(rs))
	m := &Result{Policy: rs[0].Policy, Users: map[string]UserResult{}}
	var local, redone float64
	counts := map[string]int{}
	for _, r := range rs {
		m.MakespanS += r.MakespanS / n
		m.LowerBoundS += r.LowerBoundS / n
		m.MeanWaitS += r.MeanWaitS / n
		m.P99WaitS += r.P99WaitS / n
		m.Jain += r.Jain / n
		m.ContendedS += r.ContendedS / n
		m.MedianRunS += r.MedianRunS / n
		m.MeanTurnaroundS += r.MeanTurnaroundS / n
		m.LightTurnaroundS += r.LightTurnaroundS / n
		m.WorstTurnaroundS += r.WorstTurnaroundS / n
		m.LightP99WaitS += r.LightP99WaitS / n
		local += float64(r.LocalJobs)
		redone += float64(r.RedoneJobs)
		for u, ur := range r.Users {
			acc := m.Users[u]
			acc.TurnaroundS += ur.TurnaroundS
			acc.P99WaitS += ur.P99WaitS
			acc.Share += ur.Share
			acc.FairX += ur.FairX
			acc.Jobs += ur.Jobs
			acc.Light = acc.Light || ur.Light
			m.Users[u] = acc
			counts[u]++
		}
	}
	m.LocalJobs = int(math.Round(local / n))
	m.RedoneJobs = int(math.Round(redone / n))
	for u, acc := range m.Users {
		k := float64(counts[u])
		acc.TurnaroundS /= k
		acc.P99WaitS /= k
		acc.Share /= k
		acc.FairX /= k
		acc.Jobs = int(math.Round(float64(acc.Jobs) / k))
		m.Users[u] = acc
	}
	return m
}

package scheduler

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Seniority: among the users that are backlogged — each wants more slots
// than its weighted max-min fair share of the usable ones, holds leases and
// still has requests waiting — those whose busy period began earlier get
// more weight, by fairshare.Policy.SeniorityFactor of their rank: the
// oldest (1 + Seniority) times the youngest, the others spaced evenly in
// between on a log scale. Starts less than a mean lease time apart share
// a rank.
//
// Why (docs/scheduling.md, "Seniority"): a backlogged user's build is long
// and the farm is what limits it. Users below their share — short builds —
// are served ahead of it by the fair-share formula whatever its weight, so
// seniority hardly delays them. Among backlogged builds of similar size,
// an even split (processor sharing) makes every build but the last finish
// later than serving them in turn would, and the last no sooner; serving
// the oldest first is what minimises the worst turnaround (FIFO is optimal
// for the maximum flow time). A bounded tilt takes part of that gain and
// keeps the split fair: with Seniority 1 no backlogged user is scored as
// holding less than half of what another holds per unit of weight, so a
// newcomer gets at least half an even share.

// senior is a backlogged user and the start of its busy period.
type senior struct {
	user  string
	since time.Time
}

// demand is a user's slots wanted (leases + waiting requests) over its
// weight, for water-filling.
type demand struct {
	user      string
	want, wgt float64
}

// noteBusy records the start of user's busy period if it has none running
// or waiting (called before its request joins the queue).
func (s *Scheduler) noteBusy(user string, now time.Time) {
	if _, known := s.busySince[user]; !known || (s.count[user] == 0 && s.queue.Waiting(user) == 0) {
		s.busySince[user] = now
	}
}

// findBacklogged rebuilds s.backlogged: the users whose demand (leases
// plus waiting requests) exceeds their weighted max-min fair share of the
// usable slots, so that the farm, not their own -j, limits them. Weighted
// water-filling: the users are taken in ascending demand/weight; each gets
// its demand while that fits under the level the remaining slots allow
// the remaining weight; the rest are capped at the level. If the demands
// all fit, nobody is backlogged.
func (s *Scheduler) findBacklogged() {
	clear(s.backlogged)
	s.demands = s.demands[:0]
	add := func(u string) {
		w := s.ledger.Weight(u)
		if w <= 0 {
			w = 1
		}
		s.demands = append(s.demands, demand{u, float64(s.count[u] + s.queue.Waiting(u)), w})
	}
	for u := range s.count {
		add(u)
	}
	s.queue.EachUser(func(u string, _ int) {
		if _, running := s.count[u]; !running {
			add(u)
		}
	})
	slices.SortFunc(s.demands, func(a, b demand) int {
		if c := cmp.Compare(a.want/a.wgt, b.want/b.wgt); c != 0 {
			return c
		}
		return strings.Compare(a.user, b.user)
	})
	capacity, weight := float64(s.usable), 0.0
	for _, d := range s.demands {
		weight += d.wgt
	}
	for i, d := range s.demands {
		if d.want <= capacity/weight*d.wgt {
			capacity -= d.want
			weight -= d.wgt
			continue
		}
		for _, c := range s.demands[i:] {
			s.backlogged[c.user] = true
		}
		return
	}
}

// rankSeniority rebuilds s.seniority for the backlogged users that hold
// leases and have requests waiting: ranked by the start of their busy
// period, oldest first, each gets Policy.SeniorityFactor of its rank. A
// start less than one mean lease time after the previous one shares its
// rank: which of two builds launched together sent its first request a
// few milliseconds sooner is noise, not seniority. Until a lease has
// ended the scheduler has no time scale and nobody is tilted; with fewer
// than two ranks nobody is either.
func (s *Scheduler) rankSeniority() {
	clear(s.seniority)
	if s.cfg.Policy.Seniority <= 0 || s.meanLease <= 0 {
		return
	}
	s.senList = s.senList[:0]
	s.queue.EachUser(func(u string, _ int) {
		if s.backlogged[u] && s.count[u] > 0 {
			s.senList = append(s.senList, senior{u, s.busySince[u]})
		}
	})
	if len(s.senList) < 2 {
		return
	}
	slices.SortFunc(s.senList, func(a, b senior) int { return a.since.Compare(b.since) })
	newRank := func(i int) bool { return s.senList[i].since.Sub(s.senList[i-1].since) >= s.meanLease }
	ranks := 1
	for i := 1; i < len(s.senList); i++ {
		if newRank(i) {
			ranks++
		}
	}
	if ranks < 2 {
		return
	}
	rank := 0
	for i, sr := range s.senList {
		if i > 0 && newRank(i) {
			rank++
		}
		s.seniority[sr.user] = s.cfg.Policy.SeniorityFactor(rank, ranks)
	}
}

// Seniority returns user's seniority weight factor at now (1 if it has
// none), for the status page and explanations.
func (s *Scheduler) Seniority(user string, now time.Time) float64 {
	s.prepareScores(now)
	if f, ok := s.seniority[user]; ok {
		return f
	}
	return 1
}

package tiering

// Chooser picks hosts for jobs. It carries a deterministic random state for
// tie-breaking, so the simulator reproduces a run from its seed.
type Chooser struct {
	Config Config
	// Rank orders the hosts within the best tier (default RankFill).
	Rank Rank
	rng  uint64
}

// Rank is how Choose orders the hosts of the best tier.
type Rank int

const (
	// RankFill takes the host with the lowest share of its slots in use.
	RankFill Rank = iota
	// RankSpeed takes the host where the next job would run fastest:
	// power × min(1, cpus / (foreign load + busy + 1)); ties go to the
	// lowest fill, then at random. It differs from RankFill when hosts
	// of one tier differ in power, or carry foreign load, or have more
	// slots than CPUs.
	RankSpeed
)

// Speed is the expected speed of one more job on h under processor
// sharing: power × min(1, cpus / (foreign load + busy + 1)).
func Speed(h *Host) float64 {
	cpus := float64(h.CPUs)
	if cpus < 1 {
		cpus = 1
	}
	l := h.ForeignLoad()*cpus + float64(h.Busy) + 1
	if l <= cpus {
		return h.Power
	}
	return h.Power * cpus / l
}

// NewChooser returns a Chooser seeded with seed.
func NewChooser(c Config, seed uint64) *Chooser {
	if seed == 0 {
		seed = 0x9e3779b97f4a7c15
	}
	return &Chooser{Config: c, rng: seed}
}

func (c *Chooser) next() uint64 {
	// xorshift64*
	c.rng ^= c.rng >> 12
	c.rng ^= c.rng << 25
	c.rng ^= c.rng >> 27
	return c.rng * 2685821657736338717
}

// Choose returns the index in hosts of the host for the next job, or -1.
// Only hosts for which eligible returns true (nil: all) are considered. It
// takes the best tier that has a free slot and, within it, the host with the
// lowest share of its slots in use, so work spreads; ties are broken at
// random. verdicts[i] must be Classify(&hosts[i]).
func (c *Chooser) Choose(hosts []Host, verdicts []Verdict, eligible func(i int) bool) int {
	if c.Rank == RankSpeed {
		return c.chooseSpeed(hosts, verdicts, eligible)
	}
	best, bestTier := -1, 0
	var bestFill float64
	var ties uint64
	for i := range hosts {
		h := &hosts[i]
		v := verdicts[i]
		if !candidate(h, v, bestTier, eligible, i) {
			continue
		}
		fill := float64(h.Busy) / float64(h.Slots)
		switch {
		case v.Tier > bestTier || fill < bestFill:
			best, bestTier, bestFill, ties = i, v.Tier, fill, 1
		case fill == bestFill:
			ties++
			if c.next()%ties == 0 {
				best = i
			}
		}
	}
	return best
}

// candidate says whether host i can take the next job and is in a tier at
// least as good as the best found so far.
func candidate(h *Host, v Verdict, bestTier int, eligible func(int) bool, i int) bool {
	return v.Tier > 0 && v.Tier >= bestTier && h.Free() > 0 && (eligible == nil || eligible(i))
}

func (c *Chooser) chooseSpeed(hosts []Host, verdicts []Verdict, eligible func(i int) bool) int {
	best, bestTier := -1, 0
	var bestSpeed, bestFill float64
	var ties uint64
	for i := range hosts {
		h := &hosts[i]
		v := verdicts[i]
		if !candidate(h, v, bestTier, eligible, i) {
			continue
		}
		sp := Speed(h)
		fill := float64(h.Busy) / float64(h.Slots)
		switch {
		case v.Tier > bestTier || sp > bestSpeed || (sp == bestSpeed && fill < bestFill):
			best, bestTier, bestSpeed, bestFill, ties = i, v.Tier, sp, fill, 1
		case sp == bestSpeed && fill == bestFill:
			ties++
			if c.next()%ties == 0 {
				best = i
			}
		}
	}
	return best
}

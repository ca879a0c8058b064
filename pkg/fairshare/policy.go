package fairshare

import "math"

// Policy turns a user's running slots, decayed usage and weight into the
// score Queue.Next orders by (lower goes first).
type Policy struct {
	// UsageFactor is how much recent usage tilts the order: 0 ignores
	// history (pure instantaneous max-min), 1 lets a user with twice the mean
	// usage count as if holding twice the slots.
	UsageFactor float64
	// Seniority tilts the order among backlogged users (those wanting
	// more than their fair share with requests still waiting) towards the
	// ones whose busy period began first: ranked oldest first, the oldest
	// is scored with its weight times 1 + Seniority, the youngest with its
	// weight, the others in between (SeniorityFactor). 0 turns it off.
	// internal/scheduler decides who is backlogged, since when, and which
	// starts are far enough apart to rank differently.
	Seniority float64
}

// DefaultPolicy is the policy the broker uses unless configured otherwise.
func DefaultPolicy() Policy { return Policy{UsageFactor: 0.25, Seniority: 1} }

// SeniorityFactor is the weight factor of the backlogged user of the given
// rank among n ranks (rank 0: busy the longest):
// (1 + Seniority)^((n−1−rank)/(n−1)), so every step down the ranks is the
// same ratio. It is 1 when n < 2, Seniority <= 0 or rank is out of range.
func (p Policy) SeniorityFactor(rank, n int) float64 {
	if n < 2 || p.Seniority <= 0 || rank < 0 || rank >= n {
		return 1
	}
	return math.Pow(1+p.Seniority, float64(n-1-rank)/float64(n-1))
}

// Score is (running + 1) / weight × (1 + UsageFactor × usage / meanUsage).
// running is the power-weighted number of slots the user holds now.
func (p Policy) Score(running, usage, meanUsage, weight float64) float64 {
	if weight <= 0 {
		weight = 1
	}
	tilt := 1.0
	if meanUsage > 0 {
		tilt += p.UsageFactor * usage / meanUsage
	}
	return (running + 1) / weight * tilt
}

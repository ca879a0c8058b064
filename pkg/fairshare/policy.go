package fairshare

// Policy turns a user's running slots, decayed usage and weight into the
// score Queue.Next orders by (lower goes first).
type Policy struct {
	// UsageFactor is how much recent usage tilts the order: 0 ignores
	// history (pure instantaneous max-min), 1 lets a user with twice the mean
	// usage count as if holding twice the slots.
	UsageFactor float64
}

// DefaultPolicy is the policy the broker uses unless configured otherwise.
func DefaultPolicy() Policy { return Policy{UsageFactor: 0.25} }

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

package sim

import "fmt"

// Policies lists the policy names, baselines first.
var Policies = []string{"random", "dmucs", "fastest", "dcc"}

// NewPolicy returns a fresh policy by name.
func NewPolicy(name string) (Policy, error) {
	switch name {
	case "random":
		return NewRandom(), nil
	case "dmucs":
		return NewDMUCS(), nil
	case "fastest":
		return NewFastest(), nil
	case "dcc":
		return NewDCC(), nil
	}
	return nil, fmt.Errorf("unknown policy %q (want random, dmucs, fastest, dcc or all)", name)
}

// RunNamed runs sc under the named policy.
func RunNamed(sc *Scenario, name string) (*Result, error) {
	p, err := NewPolicy(name)
	if err != nil {
		return nil, err
	}
	return Run(sc, p), nil
}
